package moviedata

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxLineBytes bounds one NDJSON line; the longest Wikipedia record is a few
// kilobytes, so a longer line is a malformed file, not a movie.
const maxLineBytes = 1 << 20

// wikipediaRecord is one line of the Wikipedia export. The score, votes,
// popularity and runtime fields are not in the export; `marquee generate`
// adds them, and they are imported when present.
type wikipediaRecord struct {
	Title          *string  `json:"title"`
	Year           *int32   `json:"year"`
	Genres         []string `json:"genres"`
	Cast           []string `json:"cast"`
	Directors      []string `json:"directors"`
	ImdbScore      *float64 `json:"imdbScore"`
	Votes          *int64   `json:"votes"`
	Popularity     *float64 `json:"popularity"`
	RuntimeMinutes *int32   `json:"runtimeMinutes"`
}

type ndjsonReader struct {
	sc   *bufio.Scanner
	line int
	err  error
}

func newNDJSONReader(r io.Reader) *ndjsonReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	return &ndjsonReader{sc: sc}
}

func (r *ndjsonReader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	rec, err := r.next()
	if err != nil {
		r.err = err
	}
	return rec, err
}

func (r *ndjsonReader) next() (Record, error) {
	for r.sc.Scan() {
		r.line++
		raw := bytes.TrimSpace(r.sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var in wikipediaRecord
		if err := json.Unmarshal(raw, &in); err != nil {
			return Record{}, &ParseError{Line: r.line, Err: fmt.Errorf("invalid JSON: %w", describeJSONError(err))}
		}
		if in.Title == nil || strings.TrimSpace(*in.Title) == "" {
			return Record{}, &ParseError{Line: r.line, Err: errors.New(`"title" is missing or empty`)}
		}
		return Record{
			Line:           r.line,
			Title:          strings.TrimSpace(*in.Title),
			Year:           in.Year,
			Genres:         cleanList(in.Genres),
			Directors:      cleanList(in.Directors),
			Cast:           cleanList(in.Cast),
			ImdbScore:      in.ImdbScore,
			Votes:          in.Votes,
			Popularity:     in.Popularity,
			RuntimeMinutes: in.RuntimeMinutes,
		}, nil
	}
	if err := r.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return Record{}, &ParseError{Line: r.line + 1, Err: fmt.Errorf("line longer than %d bytes", maxLineBytes)}
		}
		return Record{}, &ParseError{Line: r.line + 1, Err: fmt.Errorf("reading input: %w", err)}
	}
	return Record{}, io.EOF
}
