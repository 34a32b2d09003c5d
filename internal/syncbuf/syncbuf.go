// Package syncbuf is a bytes.Buffer that is safe for concurrent use, for the
// output of processes and loggers that tests read while they write.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects writes from several goroutines; the zero value is empty
// and ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
