package asymjwt

import "testing"

// loopCPU runs op in a b.Loop and reports allocations and cpu-ns/op, the
// CPU time of the whole process per operation (GC workers included). On a
// shared machine wall time also counts waiting for a core; compare
// cpu-ns/op there. Where the platform cannot tell CPU time it reports 0.
func loopCPU(b *testing.B, op func()) {
	b.ReportAllocs()
	start := processCPUTime()
	for b.Loop() {
		op()
	}
	b.ReportMetric(float64(processCPUTime()-start)/float64(b.N), "cpu-ns/op")
}
