//go:build !unix

package loadgen

import (
	"errors"
	"time"
)

// selfCPU is not implemented outside Unix: the report shows 0.
func selfCPU() (time.Duration, error) {
	return 0, errors.New("client CPU time is measured on Unix only")
}
