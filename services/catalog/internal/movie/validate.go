package movie

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits from API.md.
const (
	MinYear            = 1870
	MaxYearAhead       = 10
	MaxTitleChars      = 500
	MaxGenres          = 20
	MaxGenreChars      = 50
	MaxDirectors       = 50
	MaxDirectorChars   = 200
	MaxCast            = 200
	MaxCastChars       = 200
	MaxRuntimeMinutes  = 10000
	MaxRequestIDChars  = 100
	MaxBatch           = 100
	MaxIDChars         = 64
	DefaultPageSize    = 20
	MaxPageSize        = 100
	maxFilterChars     = 2000
	maxOrderByChars    = 200
	maxPageTokenChars  = 16384
	maxDirectorsFilter = 200
)

// Writable movie fields by update_mask path (proto names) and the JSON names
// that field violations use.
var movieFields = map[string]string{
	"title":           "title",
	"original_title":  "originalTitle",
	"year":            "year",
	"runtime_minutes": "runtimeMinutes",
	"genres":          "genres",
	"directors":       "directors",
	"cast":            "cast",
	"imdb_score":      "imdbScore",
	"votes":           "votes",
	"popularity":      "popularity",
}

// outputOnlyMovieFields may never appear in an update_mask.
var outputOnlyMovieFields = map[string]bool{
	"id": true, "etag": true, "create_time": true, "update_time": true,
}

// checkText validates a free-text value: valid UTF-8, no control characters,
// at most max characters.
func checkText(v *violations, field, s string, maxChars int) bool {
	if !utf8.ValidString(s) {
		v.add(field, "must be valid UTF-8")
		return false
	}
	if n := utf8.RuneCountInString(s); n > maxChars {
		v.add(field, "must be at most %d characters, got %d", maxChars, n)
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			v.add(field, "must not contain control characters")
			return false
		}
	}
	return true
}

// normalizeMovie trims and canonicalises m in place and validates the
// fields selected by only (every field when only is nil). prefix is the JSON
// path of the movie in the request, such as "movie".
func normalizeMovie(m *Movie, prefix string, only map[string]bool, now time.Time) violations {
	var v violations
	sel := func(path string) bool { return only == nil || only[path] }
	f := func(path string) string { return prefix + "." + movieFields[path] }

	if sel("title") {
		m.Title = strings.TrimSpace(m.Title)
		if checkText(&v, f("title"), m.Title, MaxTitleChars) && m.Title == "" {
			v.add(f("title"), "is required")
		}
	}
	if sel("original_title") {
		m.OriginalTitle = strings.TrimSpace(m.OriginalTitle)
		checkText(&v, f("original_title"), m.OriginalTitle, MaxTitleChars)
	}
	if sel("year") && m.Year != nil {
		if maxYear := now.UTC().Year() + MaxYearAhead; *m.Year < MinYear || int(*m.Year) > maxYear {
			v.add(f("year"), "must be between %d and %d", MinYear, maxYear)
		}
	}
	if sel("runtime_minutes") && m.RuntimeMinutes != nil {
		if *m.RuntimeMinutes < 1 || *m.RuntimeMinutes > MaxRuntimeMinutes {
			v.add(f("runtime_minutes"), "must be between 1 and %d", MaxRuntimeMinutes)
		}
	}
	if sel("imdb_score") && m.IMDbScore != nil {
		if s := *m.IMDbScore; math.IsNaN(s) || s < 0 || s > 10 {
			v.add(f("imdb_score"), "must be between 0 and 10")
		}
	}
	if sel("popularity") && m.Popularity != nil {
		if p := *m.Popularity; math.IsNaN(p) || p < 0 || p > 100 {
			v.add(f("popularity"), "must be between 0 and 100")
		}
	}
	if sel("votes") && m.Votes != nil && *m.Votes < 0 {
		v.add(f("votes"), "must not be negative")
	}
	if sel("genres") {
		if len(m.Genres) > MaxGenres {
			v.add(f("genres"), "must have at most %d entries, got %d", MaxGenres, len(m.Genres))
		} else {
			out := make([]string, 0, len(m.Genres))
			seen := make(map[string]bool, len(m.Genres))
			for i, g := range m.Genres {
				field := fmt.Sprintf("%s[%d]", f("genres"), i)
				if !checkText(&v, field, g, MaxGenreChars) {
					continue
				}
				c := CanonicalGenre(g)
				if c == "" {
					v.add(field, "must not be empty")
					continue
				}
				if !seen[c] {
					seen[c] = true
					out = append(out, c)
				}
			}
			m.Genres = out
		}
	}
	if sel("directors") {
		if len(m.Directors) > MaxDirectors {
			v.add(f("directors"), "must have at most %d entries, got %d", MaxDirectors, len(m.Directors))
		} else {
			for i := range m.Directors {
				d := &m.Directors[i]
				field := fmt.Sprintf("%s[%d]", f("directors"), i)
				d.ID = strings.TrimSpace(d.ID)
				d.Name = strings.TrimSpace(d.Name)
				switch {
				case d.ID == "" && d.Name == "":
					v.add(field, "needs an id or a name")
				case d.ID != "" && !ValidDirectorID(d.ID):
					v.add(field+".id", "is not a director id")
				case d.Name != "":
					checkText(&v, field+".name", d.Name, MaxDirectorChars)
				}
			}
		}
	}
	if sel("cast") {
		if len(m.Cast) > MaxCast {
			v.add(f("cast"), "must have at most %d entries, got %d", MaxCast, len(m.Cast))
		} else {
			out := make([]string, 0, len(m.Cast))
			for i, c := range m.Cast {
				field := fmt.Sprintf("%s[%d]", f("cast"), i)
				c = strings.TrimSpace(c)
				if !checkText(&v, field, c, MaxCastChars) {
					continue
				}
				if c == "" {
					v.add(field, "must not be empty")
					continue
				}
				out = append(out, c)
			}
			m.Cast = out
		}
	}
	return v
}

// CanonicalGenre trims a genre, collapses inner white space and puts it in
// title case ("science fiction" and " SCIENCE  Fiction" both become
// "Science Fiction"; "sci-fi" becomes "Sci-Fi").
func CanonicalGenre(g string) string {
	g = strings.Join(strings.Fields(g), " ")
	var b strings.Builder
	b.Grow(len(g))
	upper := true
	for _, r := range g {
		if upper {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteRune(unicode.ToLower(r))
		}
		upper = r == ' ' || r == '-' || r == '/'
	}
	return b.String()
}

// checkRequestID validates an idempotency key.
func checkRequestID(v *violations, field, id string) {
	if id == "" {
		return
	}
	checkText(v, field, id, MaxRequestIDChars)
}

// checkDirectorName trims and validates a director's new name.
func checkDirectorName(v *violations, field, name string) string {
	name = strings.TrimSpace(name)
	if checkText(v, field, name, MaxDirectorChars) && name == "" {
		v.add(field, "is required")
	}
	return name
}

// PageSize applies the AIP-158 rules: 0 means def, negative is an error,
// anything above max is lowered to it.
func PageSize(field string, size int32, def, maxSize int) (int, error) {
	switch {
	case size < 0:
		return 0, invalid(field, "must not be negative")
	case size == 0:
		return def, nil
	case int(size) > maxSize:
		return maxSize, nil
	}
	return int(size), nil
}

// ValidateMovie normalises m in place (trimming, canonical genres) and
// validates every field, naming violations under prefix (such as "movie").
func ValidateMovie(m *Movie, prefix string, now time.Time) error {
	return normalizeMovie(m, prefix, nil, now).err()
}
