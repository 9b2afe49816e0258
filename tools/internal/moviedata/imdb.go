package moviedata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// imdbRecord is one element of the assignment's array. Pointers tell a
// missing key from a zero value.
type imdbRecord struct {
	Name       *string  `json:"name"`
	Director   *string  `json:"director"`
	Genre      []string `json:"genre"`
	ImdbScore  *float64 `json:"imdb_score"`
	Popularity *float64 `json:"99popularity"`
}

// imdbReader streams the elements of a top-level JSON array with
// json.Decoder, one element at a time, so the array is never held whole.
type imdbReader struct {
	lines   *lineCounter
	dec     *json.Decoder
	started bool
	done    bool
	err     error
}

func newIMDBReader(r io.Reader) *imdbReader {
	lc := &lineCounter{r: r}
	return &imdbReader{lines: lc, dec: json.NewDecoder(lc)}
}

func (r *imdbReader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	rec, err := r.next()
	if err != nil {
		r.err = err
	}
	return rec, err
}

func (r *imdbReader) next() (Record, error) {
	if !r.started {
		r.started = true
		tok, err := r.dec.Token()
		if errors.Is(err, io.EOF) {
			return Record{}, &ParseError{Line: r.lines.lineAt(r.dec.InputOffset()), Err: errors.New("empty input, want a JSON array")}
		}
		if err != nil {
			return Record{}, r.syntaxError(err)
		}
		if d, ok := tok.(json.Delim); !ok || d != '[' {
			return Record{}, &ParseError{Line: r.lines.lineAt(r.dec.InputOffset()), Err: fmt.Errorf("want a JSON array, found %v", tok)}
		}
	}
	if r.done {
		return Record{}, io.EOF
	}
	if !r.dec.More() {
		if _, err := r.dec.Token(); err != nil { // the closing ']'
			return Record{}, r.syntaxError(err)
		}
		r.done = true
		if tok, err := r.dec.Token(); !errors.Is(err, io.EOF) {
			if err != nil {
				return Record{}, r.syntaxError(err)
			}
			return Record{}, &ParseError{Line: r.lines.lineAt(r.dec.InputOffset()), Err: fmt.Errorf("unexpected %v after the array", tok)}
		}
		return Record{}, io.EOF
	}

	var raw json.RawMessage
	if err := r.dec.Decode(&raw); err != nil {
		return Record{}, r.syntaxError(err)
	}
	start := r.dec.InputOffset() - int64(len(raw))
	line := r.lines.lineAt(start)

	var in imdbRecord
	if err := json.Unmarshal(raw, &in); err != nil {
		return Record{}, &ParseError{Line: line + lineWithin(raw, err), Err: describeJSONError(err)}
	}
	if in.Name == nil || strings.TrimSpace(*in.Name) == "" {
		return Record{}, &ParseError{Line: line, Err: errors.New(`"name" is missing or empty`)}
	}
	rec := Record{
		Line:       line,
		Title:      strings.TrimSpace(*in.Name),
		Genres:     cleanList(in.Genre),
		ImdbScore:  in.ImdbScore,
		Popularity: in.Popularity,
	}
	if in.Director != nil {
		if d := strings.TrimSpace(*in.Director); d != "" {
			rec.Directors = []string{d}
		}
	}
	return rec, nil
}

// syntaxError names the line of a JSON syntax error. The decoder's own
// offsets are not usable for that (its scanner does not count the bytes that
// Token consumes), so the bad value is scanned again from the decoder's
// position, which is exact, with a fresh decoder whose offsets are relative to
// it.
func (r *imdbReader) syntaxError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return &ParseError{Line: r.lines.lineAt(r.lines.off), Err: errors.New("invalid JSON: unexpected end of input")}
	}
	base := r.dec.InputOffset()
	rest, _ := io.ReadAll(r.dec.Buffered()) // the read-ahead window only
	value := bytes.TrimLeft(rest, " \t\r\n")
	off := base + int64(len(rest)-len(value))
	var raw json.RawMessage
	var se *json.SyntaxError
	if again := json.NewDecoder(bytes.NewReader(value)).Decode(&raw); errors.As(again, &se) && se.Offset > 0 {
		off += se.Offset - 1
	}
	return &ParseError{Line: r.lines.lineAt(off), Err: fmt.Errorf("invalid JSON: %w", err)}
}

// lineWithin counts the newlines of raw before the offset a decoding error
// reports, so that a wrong type in a record spanning several lines is
// reported on its own line.
func lineWithin(raw []byte, err error) int {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Offset > 0 && te.Offset <= int64(len(raw)) {
		return bytes.Count(raw[:te.Offset], []byte{'\n'})
	}
	return 0
}

// describeJSONError rewords type errors as "field: want type, got value".
func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "record"
		}
		return fmt.Errorf("%s: want %s, found %s", field, te.Type, te.Value)
	}
	return err
}

// lineCounter tracks line numbers of a stream read through it. It remembers
// the offsets of newlines that have been read but not yet passed by a query;
// queries must not go backwards. Only the decoder's read-ahead window is held,
// so memory stays constant.
type lineCounter struct {
	r     io.Reader
	off   int64   // bytes read so far
	nl    []int64 // offsets of newlines not yet counted into line
	lines int     // newlines before the last queried offset
}

func (c *lineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	buf := p[:n]
	base := c.off
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		c.nl = append(c.nl, base+int64(i))
		base += int64(i) + 1
		buf = buf[i+1:]
	}
	c.off += int64(n)
	return n, err
}

// lineAt returns the 1-based line of the byte at offset off.
func (c *lineCounter) lineAt(off int64) int {
	i := 0
	for i < len(c.nl) && c.nl[i] < off {
		i++
	}
	c.lines += i
	c.nl = c.nl[i:]
	return c.lines + 1
}
