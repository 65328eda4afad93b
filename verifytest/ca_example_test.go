package verifytest_test

import (
	"testing"
	"time"

	"github.com/asymjwt/asymjwt"
	"github.com/asymjwt/asymjwt/verifytest"
)

// A test of a client whose key carries a certificate: the server trusts the
// CA instead of storing the key. (An example cannot run without a test's t;
// TestCertificatesThroughServer runs this.)
func ExampleCA_Certify() {
	_ = func(t *testing.T) {
		ca := verifytest.NewCA(t)
		srv := verifytest.NewServer(verifytest.WithVerifierOptions(asymjwt.WithTrustedCAs(ca.Authority())))
		defer srv.Close()

		kp := verifytest.GenerateKey(t, verifytest.Ed25519)
		cert := ca.Certify(t, kp, []string{"deploy"}, time.Hour, verifytest.WithKeyID("ci-job-1234"))
		signer, err := asymjwt.NewSigner("deploy", cert.Key) // or KeyFromFile(kp.PrivateFile)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.SignedClient(signer).Get(srv.URL + "/releases")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if r := srv.Requests()[0]; !r.Authorized || r.Certificate.KeyID != "ci-job-1234" {
			t.Fatalf("request %+v", r)
		}
	}
}
