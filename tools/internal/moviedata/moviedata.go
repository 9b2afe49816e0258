// Package moviedata reads movie records from the files the importer accepts:
// the original assignment's JSON array (imdb.json), the Wikipedia NDJSON
// export (also the shape `marquee generate` writes) and CSV with a column
// mapping. Every reader streams: memory stays constant whatever the file's
// size, and each record carries the line it starts on so that a malformed
// record can be named precisely.
package moviedata

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Format names an input format.
type Format string

// The formats NewReader understands.
const (
	FormatIMDB      Format = "imdb"
	FormatWikipedia Format = "wikipedia"
	FormatCSV       Format = "csv"
)

// Formats lists every supported format, for help texts and validation.
func Formats() []Format { return []Format{FormatIMDB, FormatWikipedia, FormatCSV} }

// Record is one movie as read from a file, before it is sent to the catalog.
// Optional numeric fields are nil when the source does not give them, so that
// "unknown" is never confused with zero.
type Record struct {
	// Line is the 1-based line of the input on which the record starts.
	Line int

	Title          string
	Year           *int32
	Genres         []string
	Directors      []string
	Cast           []string
	ImdbScore      *float64
	Votes          *int64
	Popularity     *float64
	RuntimeMinutes *int32
}

// Reader yields records one at a time. Next returns io.EOF after the last
// record and a *ParseError for malformed input; a Reader is not safe for
// concurrent use.
type Reader interface {
	Next() (Record, error)
}

// ParseError reports a malformed record and the line it is on.
type ParseError struct {
	Line int
	Err  error
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *ParseError) Unwrap() error { return e.Err }

// Options tune how records are read.
type Options struct {
	// Mapping maps record fields (title, year, genres, directors, cast,
	// imdbScore, votes, popularity, runtimeMinutes) to CSV header columns.
	// Fields not mapped fall back to a column of the same name, compared
	// ignoring case, '_' and '-'. Only CSV uses it.
	Mapping map[string]string
	// ListSeparator splits multi-valued CSV cells (genres, directors, cast);
	// "|" when empty.
	ListSeparator string
}

// NewReader returns a streaming reader of format f over r. Gzip input is
// detected from its magic number and decompressed on the fly, so files and
// standard input work alike.
func NewReader(f Format, r io.Reader, opts Options) (Reader, error) {
	src, err := decompress(r)
	if err != nil {
		return nil, err
	}
	switch f {
	case FormatIMDB:
		return newIMDBReader(src), nil
	case FormatWikipedia:
		return newNDJSONReader(src), nil
	case FormatCSV:
		return newCSVReader(src, opts)
	default:
		return nil, fmt.Errorf("unknown format %q (want one of %s)", f, formatList())
	}
}

// ParseFormat validates a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown format %q (want one of %s)", s, formatList())
}

func formatList() string {
	formats := Formats()
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// decompress peeks at the first bytes and unwraps gzip when they are its
// magic number.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("reading input: %w", err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("opening gzip input: %w", err)
		}
		return zr, nil
	}
	return br, nil
}

// cleanList trims every entry and drops the empty ones (imdb.json's genres
// after the first carry a leading space).
func cleanList(in []string) []string {
	out := in[:0]
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
