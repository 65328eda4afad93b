//go:build !unix

package main

import "time"

// processCPUTime is 0 where the platform cannot tell it.
func processCPUTime() time.Duration { return 0 }
