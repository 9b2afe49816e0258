package moviedata_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/marquee-dev/marquee/tools/internal/moviedata"
)

// The fuzz targets feed arbitrary bytes to every reader the importer uses.
// Each must end (io.EOF or an error) after at most one record per input byte,
// never panic, and report malformed input as a *ParseError whose line lies
// within the input; the records it does return have a trimmed, non-empty
// title and lines that never go backwards; and an error, once returned,
// stays.

// inputLines returns the number of lines of data as the readers see it
// (gunzipped when it is gzip), and false when it cannot tell.
func inputLines(data []byte) (int, bool) {
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return 0, false
		}
		// Bounded: a gzip bomb in the corpus must not stall the check.
		plain, _ := io.ReadAll(io.LimitReader(zr, 64<<20))
		if len(plain) == 64<<20 {
			return 0, false
		}
		data = plain
	}
	return bytes.Count(data, []byte{'\n'}) + 1, true
}

// checkReader drains r and asserts the properties above.
func checkReader(t *testing.T, data []byte, r moviedata.Reader) {
	t.Helper()
	lines, known := inputLines(data)
	checkLine := func(what string, line int) {
		// A stream that breaks off (a truncated gzip member) is reported on
		// the line after the last one read.
		limit := lines
		if strings.Contains(what, "reading input") {
			limit++
		}
		if line < 1 || (known && line > limit) {
			t.Fatalf("%s on line %d of %d-line input %q", what, line, lines, data)
		}
	}
	prev := 0
	for range len(data) + 2 {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			if _, err := r.Next(); !errors.Is(err, io.EOF) {
				t.Fatalf("Next after io.EOF: %v", err)
			}
			return
		}
		if err != nil {
			var pe *moviedata.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError for input %q", err, err, data)
			}
			checkLine("error "+err.Error(), pe.Line)
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error %q does not start with its line", err)
			}
			if _, again := r.Next(); again == nil || again.Error() != err.Error() {
				t.Fatalf("Next after %v returned %v", err, again)
			}
			return
		}
		checkLine("record "+rec.Title, rec.Line)
		if rec.Line < prev {
			t.Fatalf("record %q on line %d after line %d", rec.Title, rec.Line, prev)
		}
		prev = rec.Line
		if rec.Title == "" || rec.Title != strings.TrimSpace(rec.Title) {
			t.Fatalf("record on line %d has title %q", rec.Line, rec.Title)
		}
		for _, list := range [][]string{rec.Genres, rec.Directors, rec.Cast} {
			for _, s := range list {
				if s == "" || s != strings.TrimSpace(s) {
					t.Fatalf("record on line %d has list entry %q", rec.Line, s)
				}
			}
		}
	}
	t.Fatalf("more records than input bytes (%d) without io.EOF", len(data))
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return b.Bytes()
}

// FuzzIMDBReader: the assignment's JSON array format.
func FuzzIMDBReader(f *testing.F) {
	for _, s := range []string{
		`[{"99popularity": 83.0, "director": "Victor Fleming", "genre": ["Adventure", " Family"], "imdb_score": 8.3, "name": "The Wizard of Oz"}]`,
		"[\n  {\"name\": \"a\"},\n  {\"name\": \"b\"}\n]\n",
		`[{"name":"a"},{"name":"b"}] trailing`,
		"[\n{\"name\": 1}\n]",
		"[\n{\"name\": \"x\", \"genre\": \"Drama\"}\n]",
		"[\n{\"name\": \"  \"}\n]",
		"{\"name\": \"x\"}",
		"[", "]", "", "\n\n\n", "[{", `[{"name":"a"}`, `[{"name":"a"},]`, "[1,2]", `[null]`, `[{"name":"\ud800"}]`,
		"\xef\xbb\xbf[]",
	} {
		f.Add([]byte(s))
	}
	f.Add(gz("[\n{\"name\":\"zipped\"}\n]"))
	f.Add(gz("[\n{\"name\":")[:12])
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := moviedata.NewReader(moviedata.FormatIMDB, bytes.NewReader(data), moviedata.Options{})
		if err != nil {
			return // not gzip after all: refused before any record
		}
		checkReader(t, data, r)
	})
}

// FuzzNDJSONReader: the Wikipedia export (and `marquee generate`'s output).
func FuzzNDJSONReader(f *testing.F) {
	for _, s := range []string{
		`{"title":"After Dark in Central Park","year":1900,"cast":[],"genres":[],"directors":["x"]}` + "\n",
		"\n\n{\"title\":\"a\"}\n{\"title\":\"b\",\"year\":\"1999\"}\n",
		"{\"title\":\"a\"}\n{\"year\":1}\n",
		"{\"title\":\"a\",\"year\":99999999999}\n",
		"{\"title\":\"a\"}{\"title\":\"b\"}\n",
		"{\"title\":\"a\"}\r\n{\"title\":\"b\"}\r\n",
		"[]\n", "null\n", "\"title\"\n", "{", "", " \t\n",
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte("{\"title\":\"" + strings.Repeat("x", 1<<20) + "\"}\n"))
	f.Add(gz("{\"title\":\"zipped\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := moviedata.NewReader(moviedata.FormatWikipedia, bytes.NewReader(data), moviedata.Options{})
		if err != nil {
			return
		}
		checkReader(t, data, r)
	})
}

// FuzzCSVReader: CSV with a header, an optional --map and list separator. A
// header that maps no title column is refused at open (a usage error naming
// the columns); anything else malformed is a *ParseError with its line.
func FuzzCSVReader(f *testing.F) {
	for _, s := range []struct{ data, mapping, sep string }{
		{"title,year,genres,directors,imdb_score\nHeat,1995,Crime|Drama,Michael Mann,8.3\n", "", ""},
		{"movie_title,title_year\n\"Multi\nLine\",2001\nNext,2002\n", "title=movie_title,year=title_year", ""},
		{"name,year\nx,19x5\n", "", ""},
		{"name,year\nx,1999.0\ny,1e3\n", "", ""},
		{"name,votes,imdbScore\nx,-1,NaN\n", "", ""},
		{"name\n\"unterminated\n", "", ""},
		{"name,a\nx\n", "", ""},
		{"name,genres\nx,a;;b; \n", "", ";"},
		{"a,b\n1,2\n", "", ""},
		{"a,b\n1,2\n", "title=missing", ""},
		{"", "", ""},
		{"title\n\n\n  \n", "", ""},
		{"title\r\nx\r\n", "", ""},
		{"\"ti\"tle\"\nx\n", "", ""},
	} {
		f.Add([]byte(s.data), s.mapping, s.sep)
	}
	f.Add(gz("title\nzipped\n"), "", "")
	f.Fuzz(func(t *testing.T, data []byte, mapping, sep string) {
		m, err := moviedata.ParseMapping(mapping)
		if err != nil {
			return
		}
		r, err := moviedata.NewReader(moviedata.FormatCSV, bytes.NewReader(data), moviedata.Options{Mapping: m, ListSeparator: sep})
		if err != nil {
			var pe *moviedata.ParseError
			switch {
			case errors.As(err, &pe):
				if lines, known := inputLines(data); pe.Line < 1 || (known && pe.Line > lines) {
					t.Fatalf("header error on line %d of %d: %v", pe.Line, lines, err)
				}
			case strings.HasPrefix(err.Error(), "mapping: "), strings.HasPrefix(err.Error(), "opening gzip input"):
			default:
				t.Fatalf("opening %q: %v (%T)", data, err, err)
			}
			return
		}
		checkReader(t, data, r)
	})
}

// TestTruncatedGzipErrorsCarryALine: a gzip file cut short is a read error
// in the middle of the stream; every reader names a line for it, as for any
// other malformed input.
func TestTruncatedGzipErrorsCarryALine(t *testing.T) {
	for _, tc := range []struct {
		format moviedata.Format
		plain  string
	}{
		{moviedata.FormatIMDB, "[\n{\"name\": \"a\"},\n{\"name\": \"b\"}\n]\n"},
		{moviedata.FormatWikipedia, "{\"title\":\"a\"}\n{\"title\":\"b\"}\n"},
		{moviedata.FormatCSV, "title\na\nb\n"},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			full := gz(tc.plain)
			cut := full[:len(full)-8] // without the gzip trailer
			r, err := moviedata.NewReader(tc.format, bytes.NewReader(cut), moviedata.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for range 10 {
				_, err = r.Next()
				if err != nil {
					break
				}
			}
			var pe *moviedata.ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("a truncated %s file: %v, want a *ParseError with a line", tc.format, err)
			}
		})
	}
}
