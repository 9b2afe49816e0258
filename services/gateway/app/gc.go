package app

import "runtime/debug"

// DefaultGCPercent is the garbage collector's target (GOGC) of the gateway
// binary when the GOGC environment variable does not set one.
//
// The gateway's live heap is small (a few MiB, up to the response cache's
// bound) while every uncached request allocates ~20 KB (gRPC, grpc-gateway,
// protojson, spans), so with Go's default of 100 it collects tens of times a
// second under load, and on one CPU (a pinned or throttled container,
// GOMAXPROCS=1) each cycle takes a quarter of that CPU, plus assists, from
// requests. 400 collects about a quarter as often (measured: ~14% less CPU
// per uncached request) for a peak heap of about five times the live one;
// GOMEMLIMIT (set from the container's memory limit by the Helm chart) makes
// the collector work harder before that limit is reached.
const DefaultGCPercent = 400

// TuneGC sets the collector's target to DefaultGCPercent unless GOGC is set
// in the environment (lookupEnv is os.LookupEnv). It changes the whole
// process, so it is for the gateway binary, not for Run, which shares its
// process with other services in the dev stack and in tests.
func TuneGC(lookupEnv func(string) (string, bool)) {
	if _, set := lookupEnv("GOGC"); !set {
		debug.SetGCPercent(DefaultGCPercent)
	}
}
