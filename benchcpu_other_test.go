//go:build !unix

package asymjwt

import "time"

func processCPUTime() time.Duration { return 0 }
