// Package profile holds benchmarks that run Candado's function.Service in
// this process, behind a loopback HTTP server, beside the seed-like baseline
// and the floor, so that a CPU profile shows what a cycle costs in each:
//
//	cd bench && go test -tags integration -run '^$' -bench 'Cycles/candado' \
//	    -benchtime 5s -cpuprofile /tmp/candado.cpu ./profile/
//	go tool pprof -top -nodecount 40 profile.test /tmp/candado.cpu
package profile
