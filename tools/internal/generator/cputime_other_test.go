//go:build !unix

package generator_test

import "time"

func processCPUTime() (time.Duration, bool) { return 0, false }
