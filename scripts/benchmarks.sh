#!/bin/bash
# One run of every benchmark BENCHMARKS.md reports, in sequence, each
# command's output in OUTDIR (uptime before, between and after). Needs
# ssh-agent and redis-server for their sections; takes about 12 minutes on
# two cores. Run it on a quiet machine: nothing else should be running.
cd "$(dirname "$0")/.."
o=${1:?usage: scripts/benchmarks.sh OUTDIR}
mkdir -p "$o"
uptime > "$o/00-uptime-start.txt"
go test -run '^$' -bench '^Benchmark(Raw|GolangJWT)?Sign$' -benchmem -count 5 . > "$o/01-sign.txt" 2>&1
go test -run '^$' -bench '^(BenchmarkVerify|BenchmarkRawVerify)$' -benchmem -count 6 . > "$o/02-verify.txt" 2>&1
go test -run '^$' -bench 'EndToEnd/interleaved' -benchtime 3000x -count 12 -cpu 1,2 . > "$o/03-e2e.txt" 2>&1
go test -run '^$' -bench 'VerifyVsRaw' -benchtime 3000x -count 12 -cpu 1 . > "$o/04-vvr.txt" 2>&1
go test -run '^$' -bench 'EndToEndParts' -benchtime 3000x -count 3 -cpu 1 . > "$o/04b-parts.txt" 2>&1
uptime >> "$o/00-uptime-start.txt"
go test -run '^$' -bench 'NonceStore|RawVerify' -benchmem -cpu 1,2 -count 3 . > "$o/05-nonce.txt" 2>&1
go test -run '^$' -bench Agent -benchmem -count 5 . > "$o/06-agent.txt" 2>&1
go test -run '^$' -bench 'BenchmarkVerify(Memory|Redis)$|BenchmarkStoreUse' -benchtime 2s -count 6 ./redisnonce > "$o/07-redis.txt" 2>&1
go test -run '^$' -bench 'BenchmarkVerifyProxy' -benchmem -count 5 ./cmd/asymjwt > "$o/08-proxy.txt" 2>&1
go test -run '^$' -bench 'VerifyMetrics|SetIdentityHeaders' -benchmem -count 5 . > "$o/09-metrics.txt" 2>&1
uptime >> "$o/00-uptime-start.txt"
go test -run '^$' -bench 'VerifyCertificate' -benchmem -count 5 . > "$o/10-cert.txt" 2>&1
go test -c -o "$o/bench.test" . && for i in 1 2 3 4 5 6; do
  "$o/bench.test" -test.run '^$' -test.benchmem -test.bench 'BodyDigest|SHA256Reference|BodyCheck|BodyReadReference|LoopbackPOST|TransportGET'
done > "$o/11-binding.txt" 2>&1
go test -run '^$' -bench 'BearerVsRequest|TokenEndpoint' -benchmem -count 5 . > "$o/12-exchange.txt" 2>&1
uptime >> "$o/00-uptime-start.txt"
echo finished > "$o/99-done.txt"
