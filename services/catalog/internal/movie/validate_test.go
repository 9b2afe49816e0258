package movie_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
)

func ptr[T any](v T) *T { return &v }

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func violations(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var inv *movie.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("want InvalidError, got %T %v", err, err)
	}
	var out []string
	for _, v := range inv.Violations {
		out = append(out, v.Field)
	}
	return out
}

func TestValidateMovie(t *testing.T) {
	valid := func() *movie.Movie {
		return &movie.Movie{Title: "  The Wizard of Oz ", Year: ptr[int32](1939), IMDbScore: ptr(8.3), Popularity: ptr(83.0),
			Genres: []string{" adventure", "FAMILY", "Adventure"}, Directors: []movie.DirectorRef{{Name: " Victor Fleming "}},
			Cast: []string{"Judy Garland"}}
	}
	tests := []struct {
		name   string
		change func(*movie.Movie)
		want   []string
	}{
		{"valid", func(*movie.Movie) {}, nil},
		{"empty title", func(m *movie.Movie) { m.Title = "   " }, []string{"movie.title"}},
		{"long title", func(m *movie.Movie) { m.Title = strings.Repeat("é", 501) }, []string{"movie.title"}},
		{"500 chars ok", func(m *movie.Movie) { m.Title = strings.Repeat("é", 500) }, nil},
		{"bad utf8", func(m *movie.Movie) { m.Title = "a\xffb" }, []string{"movie.title"}},
		{"control char", func(m *movie.Movie) { m.Title = "a\x00b" }, []string{"movie.title"}},
		{"year too old", func(m *movie.Movie) { m.Year = ptr[int32](1869) }, []string{"movie.year"}},
		{"year 1870 ok", func(m *movie.Movie) { m.Year = ptr[int32](1870) }, nil},
		{"year now+10 ok", func(m *movie.Movie) { m.Year = ptr[int32](2036) }, nil},
		{"year now+11", func(m *movie.Movie) { m.Year = ptr[int32](2037) }, []string{"movie.year"}},
		{"score above 10", func(m *movie.Movie) { m.IMDbScore = ptr(10.1) }, []string{"movie.imdbScore"}},
		{"score negative", func(m *movie.Movie) { m.IMDbScore = ptr(-0.1) }, []string{"movie.imdbScore"}},
		{"score NaN", func(m *movie.Movie) { m.IMDbScore = ptr(math.NaN()) }, []string{"movie.imdbScore"}},
		{"popularity 101", func(m *movie.Movie) { m.Popularity = ptr(101.0) }, []string{"movie.popularity"}},
		{"votes negative", func(m *movie.Movie) { m.Votes = ptr[int64](-1) }, []string{"movie.votes"}},
		{"runtime zero", func(m *movie.Movie) { m.RuntimeMinutes = ptr[int32](0) }, []string{"movie.runtimeMinutes"}},
		{"21 genres", func(m *movie.Movie) {
			m.Genres = nil
			for i := range 21 {
				m.Genres = append(m.Genres, string(rune('a'+i)))
			}
		}, []string{"movie.genres"}},
		{"empty genre", func(m *movie.Movie) { m.Genres = []string{"Drama", " "} }, []string{"movie.genres[1]"}},
		{"51 directors", func(m *movie.Movie) { m.Directors = make([]movie.DirectorRef, 51) }, []string{"movie.directors"}},
		{"director without id or name", func(m *movie.Movie) { m.Directors = []movie.DirectorRef{{}} }, []string{"movie.directors[0]"}},
		{"director bad id", func(m *movie.Movie) { m.Directors = []movie.DirectorRef{{ID: "x"}} }, []string{"movie.directors[0].id"}},
		{"director long name", func(m *movie.Movie) { m.Directors = []movie.DirectorRef{{Name: strings.Repeat("x", 201)}} },
			[]string{"movie.directors[0].name"}},
		{"201 cast", func(m *movie.Movie) { m.Cast = make([]string, 201) }, []string{"movie.cast"}},
		{"several at once", func(m *movie.Movie) { m.Title = ""; m.Year = ptr[int32](1) }, []string{"movie.title", "movie.year"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := valid()
			tt.change(m)
			got := violations(t, movie.ValidateMovie(m, "movie", now))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("violations = %v, want %v", got, tt.want)
			}
		})
	}
	m := valid()
	if err := movie.ValidateMovie(m, "movie", now); err != nil {
		t.Fatal(err)
	}
	if m.Title != "The Wizard of Oz" || !slices.Equal(m.Genres, []string{"Adventure", "Family"}) || m.Directors[0].Name != "Victor Fleming" {
		t.Fatalf("not normalised: %+v", m)
	}
}

func TestCanonicalGenre(t *testing.T) {
	for in, want := range map[string]string{
		" adventure": "Adventure", "SCIENCE  fiction": "Science Fiction", "sci-fi": "Sci-Fi", "film-noir": "Film-Noir",
		"Drama": "Drama", "": "",
	} {
		if got := movie.CanonicalGenre(in); got != want {
			t.Errorf("CanonicalGenre(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPageSize(t *testing.T) {
	for _, tt := range []struct {
		in      int32
		want    int
		wantErr bool
	}{{0, 20, false}, {1, 1, false}, {100, 100, false}, {101, 100, false}, {-1, 0, true}} {
		got, err := movie.PageSize("pageSize", tt.in, 20, 100)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("PageSize(%d) = %d, %v", tt.in, got, err)
		}
	}
}

func TestIDs(t *testing.T) {
	id := movie.MovieIDForRequest("imdb:the wizard of oz|1939|victor fleming")
	if !movie.ValidMovieID(id) || id != movie.MovieIDForRequest("imdb:the wizard of oz|1939|victor fleming") {
		t.Fatalf("derived id %q is not stable or valid", id)
	}
	// The importer reimplements this derivation; pin it.
	if got, want := movie.MovieIDForRequest("r1"), "m_"+crockfordSHA("r1"); got != want {
		t.Fatalf("MovieIDForRequest = %q, want %q", got, want)
	}
	if a, b := movie.DirectorIDForName(" Victor  FLEMING"), movie.DirectorIDForName("victor fleming"); a != b || !movie.ValidDirectorID(a) {
		t.Fatalf("director ids differ: %q %q", a, b)
	}
	if movie.NewMovieID(now) == movie.NewMovieID(now) || !movie.ValidMovieID(movie.NewMovieID(now)) {
		t.Fatal("random ids collide or are invalid")
	}
	for _, s := range []string{"", "m_", "m_0123456789ABCDEFGHJKMNPQRI", "d_0123456789ABCDEFGHJKMNPQRS"} {
		if movie.ValidMovieID(s) {
			t.Errorf("ValidMovieID(%q) = true", s)
		}
	}
}

func TestETag(t *testing.T) {
	if got := movie.FormatETag(7); got != `"7"` {
		t.Fatalf("FormatETag = %s", got)
	}
	for in, want := range map[string]int64{`"7"`: 7, `W/"7"`: 7, "7": 7} {
		if got, ok := movie.ParseETag(in); !ok || got != want {
			t.Errorf("ParseETag(%s) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{`"x"`, `""`, `"-1"`} {
		if _, ok := movie.ParseETag(in); ok {
			t.Errorf("ParseETag(%s) ok", in)
		}
	}
}
