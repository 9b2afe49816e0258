package moviedata_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marquee-dev/marquee/tools/internal/moviedata"
)

// dataDir is the repository's data directory, where the real files live.
const dataDir = "../../../data"

func readAll(t *testing.T, r moviedata.Reader) []moviedata.Record {
	t.Helper()
	var out []moviedata.Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("record %d: %v", len(out)+1, err)
		}
		out = append(out, rec)
	}
}

func open(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestIMDBAllRecords(t *testing.T) {
	r, err := moviedata.NewReader(moviedata.FormatIMDB, open(t, "imdb.json"), moviedata.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, r)
	if got, want := len(recs), 248; got != want {
		t.Fatalf("records = %d, want %d", got, want)
	}
	first := recs[0]
	if first.Title != "The Wizard of Oz" || first.Line != 2 {
		t.Errorf("first record = %q on line %d, want The Wizard of Oz on line 2", first.Title, first.Line)
	}
	if got, want := strings.Join(first.Genres, ","), "Adventure,Family,Fantasy,Musical"; got != want {
		t.Errorf("first genres = %q, want %q (trimmed)", got, want)
	}
	if len(first.Directors) != 1 || first.Directors[0] != "Victor Fleming" {
		t.Errorf("first directors = %q, want [Victor Fleming]", first.Directors)
	}
	if first.ImdbScore == nil || *first.ImdbScore != 8.3 || first.Popularity == nil || *first.Popularity != 83 {
		t.Errorf("first score/popularity = %v/%v, want 8.3/83", first.ImdbScore, first.Popularity)
	}
	wizards := 0
	prevLine := 0
	for _, rec := range recs {
		if rec.Title == "The Wizard of Oz" {
			wizards++
		}
		if rec.Line <= prevLine {
			t.Errorf("%q: line %d not after %d", rec.Title, rec.Line, prevLine)
		}
		prevLine = rec.Line
		if rec.Year != nil {
			t.Errorf("%q: year %d, imdb.json has none", rec.Title, *rec.Year)
		}
		if len(rec.Directors) != 1 {
			t.Errorf("%q: directors %q, want exactly one", rec.Title, rec.Directors)
		}
		for _, g := range rec.Genres {
			if g != strings.TrimSpace(g) || g == "" {
				t.Errorf("%q: genre %q not trimmed", rec.Title, g)
			}
		}
	}
	if wizards != 2 {
		t.Errorf("The Wizard of Oz appears %d times, want 2", wizards)
	}
	// Each element spans 12 lines in the file (11 plus one per extra genre);
	// the last one starts where the file says.
	if last := recs[len(recs)-1]; last.Line < 2000 {
		t.Errorf("last record on line %d, suspiciously early", last.Line)
	}
}

func TestWikipediaNDJSON(t *testing.T) {
	r, err := moviedata.NewReader(moviedata.FormatWikipedia, open(t, "wikipedia-movies.ndjson.gz"), moviedata.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	withDirectors := 0
	for i := 1; i <= n; i++ {
		rec, err := r.Next()
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if rec.Line != i {
			t.Fatalf("record %d on line %d", i, rec.Line)
		}
		if rec.Title == "" || rec.Year == nil || *rec.Year < 1900 || *rec.Year > 2023 {
			t.Fatalf("line %d: title %q year %v", i, rec.Title, rec.Year)
		}
		if len(rec.Directors) > 0 {
			withDirectors++
		}
		if i == 1 && rec.Title != "After Dark in Central Park" {
			t.Errorf("line 1 title = %q", rec.Title)
		}
	}
	if withDirectors < n/2 {
		t.Errorf("only %d of %d records have directors", withDirectors, n)
	}
}

func TestGeneratorShapeIsWikipediaFormat(t *testing.T) {
	line := `{"title":"The Last Night","year":1999,"genres":["Drama"],"cast":["Ann Lee"],"directors":["Jo Park"],"imdbScore":7.3,"votes":12000,"popularity":73,"runtimeMinutes":104}`
	r, err := moviedata.NewReader(moviedata.FormatWikipedia, strings.NewReader(line), moviedata.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if *rec.ImdbScore != 7.3 || *rec.Votes != 12000 || *rec.Popularity != 73 || *rec.RuntimeMinutes != 104 || *rec.Year != 1999 {
		t.Errorf("record = %+v", rec)
	}
}

func TestCSVWithMapping(t *testing.T) {
	f, err := os.Open("testdata/movies.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mapping, err := moviedata.ParseMapping("title=movie_title,year=title_year,directors=director_name,imdbScore=imdb_score,votes=num_voted_users,runtimeMinutes=duration,cast=actors")
	if err != nil {
		t.Fatal(err)
	}
	r, err := moviedata.NewReader(moviedata.FormatCSV, f, moviedata.Options{Mapping: mapping})
	if err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, r)
	if len(recs) != 5 {
		t.Fatalf("records = %d, want 5", len(recs))
	}
	avatar := recs[0]
	if avatar.Title != "Avatar" || *avatar.Year != 2009 || *avatar.ImdbScore != 7.9 || *avatar.Votes != 886204 ||
		*avatar.RuntimeMinutes != 178 || avatar.Line != 2 {
		t.Errorf("avatar = %+v", avatar)
	}
	if got := strings.Join(avatar.Genres, ","); got != "Action,Adventure,Fantasy,Sci-Fi" {
		t.Errorf("genres (guessed from the header) = %q", got)
	}
	if got := strings.Join(avatar.Cast, ","); got != "CCH Pounder,Joel David Moore" {
		t.Errorf("cast = %q", got)
	}
	if recs[1].Title != "Pirates of the Caribbean: At World's End" {
		t.Errorf("quoted title = %q", recs[1].Title)
	}
	if recs[2].Title != "Amélie" || recs[2].Votes != nil || recs[2].Cast != nil {
		t.Errorf("amélie = %+v (empty cells must stay unset)", recs[2])
	}
	dk := recs[3]
	if *dk.Year != 2012 || strings.Join(dk.Genres, ",") != "Action,Thriller" || strings.Join(dk.Cast, ",") != "Tom Hardy,Christian Bale" {
		t.Errorf("dark knight = %+v", dk)
	}
	if recs[4].Line != 6 || recs[4].Year != nil || recs[4].Directors != nil {
		t.Errorf("multi-line record = %+v, want line 6 without year or directors", recs[4])
	}
}

func TestCSVMappingErrors(t *testing.T) {
	header := "movie_title,year\nX,1999\n"
	for _, tc := range []struct {
		mapping string
		want    string
	}{
		{"", "no column for title"},
		{"title=nope", `no column "nope"`},
		{"titel=movie_title", `unknown field "titel"`},
	} {
		m, err := moviedata.ParseMapping(tc.mapping)
		if err != nil {
			t.Fatal(err)
		}
		_, err = moviedata.NewReader(moviedata.FormatCSV, strings.NewReader(header), moviedata.Options{Mapping: m})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mapping %q: error %v, want %q", tc.mapping, err, tc.want)
		}
	}
	if _, err := moviedata.ParseMapping("title"); err == nil {
		t.Error(`ParseMapping("title") succeeded`)
	}
}

func TestMalformedInputNamesTheLine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format moviedata.Format
		input  string
		ok     int // records read before the error
		line   int
		want   string
	}{
		{"imdb syntax", moviedata.FormatIMDB, "[\n{\"name\": \"A\"},\n{\"name\": \"B\",,}\n]", 1, 3, "invalid JSON"},
		{"imdb missing comma", moviedata.FormatIMDB, "[\n{\"name\": \"A\"}\n{\"name\": \"B\"}\n]", 1, 3, "invalid JSON"},
		{"imdb wrong type", moviedata.FormatIMDB, "[\n  {\n    \"name\": \"A\",\n    \"imdb_score\": \"high\"\n  }\n]", 0, 4, "imdb_score"},
		{"imdb no name", moviedata.FormatIMDB, "[{\"name\": \"A\"},\n\n  {\"director\": \"X\"}]", 1, 3, `"name"`},
		{"imdb truncated", moviedata.FormatIMDB, "[\n{\"name\": \"A\"},\n{\"name\": \"B\"", 1, 3, "unexpected end"},
		{"imdb not an array", moviedata.FormatIMDB, "\n{\"name\": \"A\"}", 0, 2, "want a JSON array"},
		{"imdb trailing garbage", moviedata.FormatIMDB, "[{\"name\": \"A\"}]\n\n]", 1, 3, "invalid character ']'"},
		{"imdb trailing value", moviedata.FormatIMDB, "[{\"name\": \"A\"}]\n\n{}", 1, 3, "after the array"},
		{"imdb error deep in a later element", moviedata.FormatIMDB, "[" + strings.Repeat("{\"name\": \"A\"},", 50) + "\n{\n\"name\": \"B\",\n\"genre\": [\"X\"\n\"Y\"]}]", 50, 5, "after array element"},
		{"wikipedia syntax", moviedata.FormatWikipedia, "{\"title\": \"A\"}\n\n{\"title\": \"B\"\n", 1, 3, "invalid JSON"},
		{"wikipedia year type", moviedata.FormatWikipedia, "{\"title\": \"A\", \"year\": \"1999\"}\n", 0, 1, "year"},
		{"wikipedia empty title", moviedata.FormatWikipedia, "{\"title\": \"A\"}\n{\"title\": \" \"}\n", 1, 2, `"title"`},
		{"csv year", moviedata.FormatCSV, "title,year\nA,1999\nB,soon\n", 1, 3, `"year"`},
		{"csv quote", moviedata.FormatCSV, "title,year\nA,1999\n\"B,2000\n", 1, 3, "invalid CSV"},
		{"csv field count", moviedata.FormatCSV, "title,year\nA,1999\nB,2000,x\n", 1, 3, "invalid CSV"},
		{"csv empty title", moviedata.FormatCSV, "title,year\n,1999\n", 0, 2, "title"},
		{"csv score", moviedata.FormatCSV, "title,imdbScore\nA,NaN\n", 0, 2, "imdbScore"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := moviedata.NewReader(tc.format, strings.NewReader(tc.input), moviedata.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tc.ok; i++ {
				if _, err := r.Next(); err != nil {
					t.Fatalf("record %d: %v", i+1, err)
				}
			}
			_, err = r.Next()
			var pe *moviedata.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error = %v, want a ParseError", err)
			}
			if pe.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q (line %d), want line %d mentioning %q", err, pe.Line, tc.line, tc.want)
			}
			if _, again := r.Next(); again == nil || again.Error() != err.Error() {
				t.Errorf("Next after an error = %v, want the same error", again)
			}
		})
	}
}

func TestGzipIsDetected(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	io.WriteString(zw, `[{"name": "A", "director": "B", "genre": ["Drama", " War"]}]`)
	zw.Close()
	r, err := moviedata.NewReader(moviedata.FormatIMDB, bufio.NewReader(&buf), moviedata.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, r)
	if len(recs) != 1 || recs[0].Title != "A" || strings.Join(recs[0].Genres, ",") != "Drama,War" {
		t.Errorf("records = %+v", recs)
	}
}

func TestEmptyInput(t *testing.T) {
	r, err := moviedata.NewReader(moviedata.FormatWikipedia, strings.NewReader(""), moviedata.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("empty NDJSON: %v, want EOF", err)
	}
	r, err = moviedata.NewReader(moviedata.FormatIMDB, strings.NewReader("[]"), moviedata.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("empty array: %v, want EOF", err)
	}
	if _, err := moviedata.ParseFormat("xml"); err == nil {
		t.Error(`ParseFormat("xml") succeeded`)
	}
}
