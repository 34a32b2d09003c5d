package downsample

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// spillWriter appends records to a temporary file: the labels of the source
// series, or the chunk references of one aggregate, in the order pass one
// produces them.
type spillWriter struct {
	f   *os.File
	w   *bufio.Writer
	buf []byte
}

func createSpill(name string) (*spillWriter, error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, fmt.Errorf("create spill file: %w", err)
	}
	return &spillWriter{f: f, w: bufio.NewWriterSize(f, 256<<10)}, nil
}

// writeLabels appends a labels record.
func (s *spillWriter) writeLabels(lset labels.Labels) error {
	s.buf = binary.AppendUvarint(s.buf[:0], uint64(lset.Len()))
	lset.Range(func(l labels.Label) {
		s.buf = binary.AppendUvarint(s.buf, uint64(len(l.Name)))
		s.buf = append(s.buf, l.Name...)
		s.buf = binary.AppendUvarint(s.buf, uint64(len(l.Value)))
		s.buf = append(s.buf, l.Value...)
	})
	if _, err := s.w.Write(s.buf); err != nil {
		return fmt.Errorf("write spill file: %w", err)
	}
	return nil
}

// writeMetas appends a record of the chunks of source series seriesIdx.
func (s *spillWriter) writeMetas(seriesIdx uint64, metas []chunks.Meta) error {
	s.buf = binary.AppendUvarint(s.buf[:0], seriesIdx)
	s.buf = binary.AppendUvarint(s.buf, uint64(len(metas)))
	for _, m := range metas {
		s.buf = binary.AppendUvarint(s.buf, uint64(m.Ref))
		s.buf = binary.AppendVarint(s.buf, m.MinTime)
		s.buf = binary.AppendVarint(s.buf, m.MaxTime)
	}
	if _, err := s.w.Write(s.buf); err != nil {
		return fmt.Errorf("write spill file: %w", err)
	}
	return nil
}

// close flushes and closes the file, which stays on disk for reading.
func (s *spillWriter) close() error {
	if s.f == nil {
		return nil
	}
	err := s.w.Flush()
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	s.f = nil
	if err != nil {
		return fmt.Errorf("close spill file: %w", err)
	}
	return nil
}

// spillReader reads the records of a spill file back in order.
type spillReader struct {
	f       *os.File
	r       *bufio.Reader
	sb      labels.ScratchBuilder
	strBuf  []byte
	metaBuf []chunks.Meta
}

func openSpill(name string) (*spillReader, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open spill file: %w", err)
	}
	return &spillReader{f: f, r: bufio.NewReaderSize(f, 256<<10)}, nil
}

func (s *spillReader) close() error { return s.f.Close() }

func (s *spillReader) str() (string, error) {
	n, err := binary.ReadUvarint(s.r)
	if err != nil {
		return "", err
	}
	if n > 1<<24 {
		return "", fmt.Errorf("label of %d bytes", n)
	}
	s.strBuf = append(s.strBuf[:0], make([]byte, n)...)
	if _, err := io.ReadFull(s.r, s.strBuf); err != nil {
		return "", err
	}
	return string(s.strBuf), nil
}

// readLabels reads the next labels record into sb, which is reset first, and
// returns the labels. It returns io.EOF at the end of the file.
func (s *spillReader) readLabels() (labels.Labels, error) {
	n, err := binary.ReadUvarint(s.r)
	if err != nil {
		return labels.EmptyLabels(), err
	}
	s.sb.Reset()
	for range n {
		name, err := s.str()
		if err != nil {
			return labels.EmptyLabels(), noEOF(err)
		}
		value, err := s.str()
		if err != nil {
			return labels.EmptyLabels(), noEOF(err)
		}
		s.sb.Add(name, value)
	}
	return s.sb.Labels(), nil
}

// readMetas reads the next chunks record. The returned slice is reused by the
// next call. It returns io.EOF at the end of the file.
func (s *spillReader) readMetas() (uint64, []chunks.Meta, error) {
	idx, err := binary.ReadUvarint(s.r)
	if err != nil {
		return 0, nil, err
	}
	n, err := binary.ReadUvarint(s.r)
	if err != nil {
		return 0, nil, noEOF(err)
	}
	s.metaBuf = s.metaBuf[:0]
	for range n {
		ref, err := binary.ReadUvarint(s.r)
		if err != nil {
			return 0, nil, noEOF(err)
		}
		mint, err := binary.ReadVarint(s.r)
		if err != nil {
			return 0, nil, noEOF(err)
		}
		maxt, err := binary.ReadVarint(s.r)
		if err != nil {
			return 0, nil, noEOF(err)
		}
		s.metaBuf = append(s.metaBuf, chunks.Meta{Ref: chunks.ChunkRef(ref), MinTime: mint, MaxTime: maxt})
	}
	return idx, s.metaBuf, nil
}

// noEOF turns an end of file inside a record into an error of its own.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
