//go:build unix

package generator_test

import (
	"syscall"
	"time"
)

// processCPUTime is the CPU time the process has used, so that benchmarks
// on a busy machine can report throughput per CPU second as well as per
// wall-clock second.
func processCPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
