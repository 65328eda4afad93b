package asymjwt

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
)

// TestStripIdentityHeaders is SECURITY.md row G1 for the library: every
// spelling a service behind a gateway could read as an identity header is
// removed, and nothing else.
func TestStripIdentityHeaders(t *testing.T) {
	tests := []struct {
		name string
		in   http.Header
		want http.Header
	}{
		{"canonical", http.Header{"Asymjwt-User": {"mallory"}, "Asymjwt-Key": {"SHA256:x"}}, http.Header{}},
		{"repeated", http.Header{"Asymjwt-User": {"mallory", "alice"}}, http.Header{}},
		{"lower case, not canonicalised", http.Header{"asymjwt-user": {"mallory"}, "asymjwt-key": {"x"}}, http.Header{}},
		{"upper case", http.Header{"ASYMJWT-USER": {"mallory"}}, http.Header{}},
		{"underscores, as CGI reads them", http.Header{"Asymjwt_User": {"m"}, "asymjwt_key": {"k"}, "ASYMJWT_USER": {"m"}}, http.Header{}},
		{"mixed separators", http.Header{"Asymjwt_user": {"m"}, "AsYmJwT-kEy": {"k"}}, http.Header{}},
		{"others kept", http.Header{"Asymjwt-Users": {"x"}, "X-Asymjwt-User": {"y"}, "Asymjwt-Use": {"z"}, "Accept": {"a"}},
			http.Header{"Asymjwt-Users": {"x"}, "X-Asymjwt-User": {"y"}, "Asymjwt-Use": {"z"}, "Accept": {"a"}}},
		{"listed in Connection", http.Header{"Connection": {"keep-alive, Asymjwt-User", "asymjwt_key,Upgrade"}, "Asymjwt-User": {"m"}},
			http.Header{"Connection": {"keep-alive", "Upgrade"}}},
		{"only identity names in Connection", http.Header{"Connection": {" Asymjwt-User , asymjwt-key "}, "Accept": {"a"}},
			http.Header{"Accept": {"a"}}},
		{"Connection without identity names kept as sent", http.Header{"Connection": {"keep-alive,  Upgrade"}},
			http.Header{"Connection": {"keep-alive,  Upgrade"}}},
		{"empty", http.Header{}, http.Header{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			StripIdentityHeaders(tt.in)
			if !reflect.DeepEqual(tt.in, tt.want) {
				t.Fatalf("got %v, want %v", tt.in, tt.want)
			}
		})
	}
	StripIdentityHeaders(nil) // no panic
}

func TestSetIdentityHeaders(t *testing.T) {
	id := &Identity{Username: "alice", Key: PublicKey{Fingerprint: "SHA256:abc"}}
	h := http.Header{
		"asymjwt_user": {"mallory"}, "Asymjwt-User": {"mallory", "eve"}, "ASYMJWT-KEY": {"SHA256:evil"},
		"Connection": {"Asymjwt-User"}, "Accept": {"*/*"},
	}
	if err := SetIdentityHeaders(h, id); err != nil {
		t.Fatal(err)
	}
	want := http.Header{"Asymjwt-User": {"alice"}, "Asymjwt-Key": {"SHA256:abc"}, "Accept": {"*/*"}}
	if !reflect.DeepEqual(h, want) {
		t.Fatalf("got %v, want %v", h, want)
	}

	for _, name := range []string{" alice", "alice ", " "} {
		h := http.Header{"Asymjwt-User": {"mallory"}}
		err := SetIdentityHeaders(h, &Identity{Username: name})
		if !errors.Is(err, ErrInvalidUsername) {
			t.Fatalf("%q: err = %v, want ErrInvalidUsername", name, err)
		}
		if len(h) != 0 {
			t.Fatalf("%q: headers left %v, want none", name, h)
		}
	}
	for _, name := range []string{"a b", "ålice", "svc@example.com"} {
		h := http.Header{}
		if err := SetIdentityHeaders(h, &Identity{Username: name}); err != nil || h.Get(UserHeader) != name {
			t.Fatalf("%q: %v, %v", name, err, h)
		}
	}
	h = http.Header{"Asymjwt-Key": {"x"}}
	if err := SetIdentityHeaders(h, nil); err == nil || len(h) != 0 {
		t.Fatalf("nil identity: %v, %v", err, h)
	}
}

func BenchmarkSetIdentityHeaders(b *testing.B) {
	id := &Identity{Username: "alice", Key: PublicKey{Fingerprint: "SHA256:abc"}}
	h := http.Header{"Accept": {"*/*"}, "User-Agent": {"x"}, "Content-Type": {"y"}, "Connection": {"keep-alive"}}
	b.ReportAllocs()
	for b.Loop() {
		if err := SetIdentityHeaders(h, id); err != nil {
			b.Fatal(err)
		}
	}
}
