package mongostore_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie/mongostore"
)

// operators are the only query operators the store may build; any other key
// starting with "$" would mean user input became an operator.
var operators = []string{"$gt", "$gte", "$lt", "$lte", "$ne", "$or", "$regex"}

// documentFields are the only field names a movies query may name.
var documentFields = []string{
	"_id", "delete_time", movie.FieldGenres, movie.FieldDirectorID, movie.FieldDirectorName, movie.FieldYear,
	movie.FieldIMDbScore, movie.FieldPopularity, movie.FieldTitleKey, movie.FieldUpdateTime,
}

// FuzzMovieFilter: whatever the filter, order_by and cursor, the MongoDB
// filter and sort of a planned query name only document fields and the
// store's own operators; user text only ever appears as a typed value (no
// NoSQL injection through ListMovies).
func FuzzMovieFilter(f *testing.F) {
	for _, s := range []struct{ filter, order, after string }{
		{"", "", ""},
		{`genres:"Drama"`, "imdbScore desc", "m_1"},
		{`title = "$where*"`, "title", "$gt"},
		{`directors.name = "{\"$ne\": null}"`, "year desc", `{"$gt": ""}`},
		{`genres = "$regex"`, "", "$or"},
		{`year >= 1990 AND year < 2000`, "year", ""},
		{"", "updateTime desc", "x"},
	} {
		f.Add(s.filter, s.order, s.after, uint8(0), 1.5)
	}
	p, err := movie.NewPlanner()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, filter, order, after string, kind uint8, num float64) {
		q, err := p.Plan(filter, order)
		if err != nil {
			return
		}
		if after != "" {
			v := movie.Value{Kind: movie.ValueKind(kind % 5), Int: int64(num), Flt: num, Str: after, Time: time.UnixMilli(int64(num)).UTC()}
			q.After = &movie.Cursor{Value: v, ID: after}
		}
		walk(t, mongostore.MovieFilter(q), "filter", documentFields)
		sort := mongostore.MovieSort(q)
		for _, e := range sort {
			if !slices.Contains(documentFields, e.Key) {
				t.Fatalf("sort on %q", e.Key)
			}
			if d, ok := e.Value.(int); !ok || (d != 1 && d != -1) {
				t.Fatalf("sort direction %v", e.Value)
			}
		}
	})
}

// walk checks that every key of a filter document is a document field or one
// of the store's operators, and that operators sit where MongoDB expects
// them.
func walk(t *testing.T, v any, path string, fields []string) {
	t.Helper()
	switch x := v.(type) {
	case bson.D:
		for _, e := range x {
			switch {
			case strings.HasPrefix(e.Key, "$"):
				if !slices.Contains(operators, e.Key) {
					t.Fatalf("%s: operator %q", path, e.Key)
				}
			case !slices.Contains(fields, e.Key):
				t.Fatalf("%s: field %q", path, e.Key)
			}
			walk(t, e.Value, path+"."+e.Key, fields)
		}
	case bson.A:
		for _, item := range x {
			if _, ok := item.(bson.D); !ok {
				t.Fatalf("%s: array item %T", path, item)
			}
			walk(t, item, path+"[]", fields)
		}
	case bson.M, map[string]any, []any:
		t.Fatalf("%s: untyped container %T", path, v)
	case nil, string, int64, float64, int, time.Time:
	default:
		t.Fatalf("%s: value of type %T", path, v)
	}
}

// FuzzDirectorFilter: a directors name filter becomes an exact match or a
// fully escaped regular expression that matches the text literally.
func FuzzDirectorFilter(f *testing.F) {
	for _, s := range []string{"nolan", "a.*(b", "^$", `\`, "[", "(?i)x", "$where", "\xff"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, contains, afterName string) {
		// Protobuf refuses strings that are not UTF-8 before a request
		// reaches the service, so only UTF-8 text can get here.
		if contains == "" || !utf8.ValidString(contains) {
			return
		}
		q := &movie.DirectorQuery{NameContains: contains, AfterName: afterName, AfterID: "d_1"}
		d := mongostore.DirectorFilter(q)
		walk(t, d, "filter", []string{"_id", "name_lower"})
		pattern, ok := d[0].Value.(bson.D)[0].Value.(string)
		if !ok {
			t.Fatalf("regex %v", d[0].Value)
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			t.Fatalf("pattern %q of %q does not compile: %v", pattern, contains, err)
		}
		if !re.MatchString("<" + contains + ">") {
			t.Fatalf("pattern %q does not match its own text %q", pattern, contains)
		}
		if pattern != regexp.QuoteMeta(contains) {
			t.Fatalf("pattern %q is not the quoted text of %q", pattern, contains)
		}
	})
}
