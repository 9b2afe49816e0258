package movie_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
)

// The fuzz targets of this file hold hostile input against the properties the
// API promises: the planner turns any filter and order_by into either an
// index-served query made of typed values or an InvalidError naming the field
// (never a panic, never another error); a page token is accepted only when it
// carries this key's MAC over this query; and any create body that protojson
// accepts is either refused with field violations under "movie." or
// normalised into a movie that satisfies every documented limit.

// knownReasons are the reasons a bad filter or order_by may carry.
var knownReasons = map[string]bool{
	movie.ReasonInvalidArgument: true, movie.ReasonInvalidFilter: true,
	movie.ReasonInvalidOrderBy: true, movie.ReasonUnsupportedQuery: true, movie.ReasonInvalidPageToken: true,
}

// fieldKinds is the type every planned value of a document field must have:
// user input only ever becomes one of these typed values.
var fieldKinds = map[string][]movie.ValueKind{
	movie.FieldGenres:       {movie.KindString},
	movie.FieldDirectorID:   {movie.KindString},
	movie.FieldDirectorName: {movie.KindString},
	movie.FieldTitleKey:     {movie.KindString},
	movie.FieldYear:         {movie.KindInt},
	movie.FieldIMDbScore:    {movie.KindFloat},
	movie.FieldPopularity:   {movie.KindFloat},
	movie.FieldUpdateTime:   {movie.KindTime},
	movie.FieldID:           {movie.KindString},
}

func addPlanSeeds(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""},
		{`genres:"Drama"`, "imdbScore desc"},
		{`genres = "drama" AND imdbScore >= 8 AND imdbScore < 9.5`, "imdbScore desc, id desc"},
		{`directors.name = "Christopher Nolan" AND year >= 1990`, "year"},
		{`directors.id = "d_0123456789ABCDEFGHJKMNPQRS"`, ""},
		{`title = "the wiz*"`, "title"},
		{`title = "*oz"`, "title"},
		{`year = 1939`, ""},
		{`popularity > 50`, "popularity desc"},
		{`genres:"Drama" OR genres:"Comedy"`, ""},
		{`NOT year = 1`, ""},
		{`year != 2000`, ""},
		{`title = {"$gt": ""}`, ""},
		{`genres = "{\"$ne\": null}"`, ""},
		{`$where = "1"`, ""},
		{`year >= "1990"`, "year"},
		{`imdbScore >= 8`, "title, year"},
		{`(((((((((year = 1)))))))))`, ""},
		{`year = 99999999999999999999`, ""},
		{`imdbScore > 1e400`, "imdbScore"},
		{`directors.name:"` + strings.Repeat("x", 3000) + `"`, ""},
		{"", "updateTime desc, id"},
		{"", "year, id desc"},
		{"", "$natural"},
		{"", "title asc desc"},
		{"\x00\xff", "\xff"},
		{`fn(year)`, ""},
		{`year = year`, ""},
		{`a.b.c.d = 1`, ""},
	} {
		f.Add(s[0], s[1])
	}
}

// FuzzPlan: any filter and order_by is planned into a query that one index
// serves, built only of known fields and typed values, or refused with an
// InvalidError naming filter or orderBy.
func FuzzPlan(f *testing.F) {
	addPlanSeeds(f)
	p, err := movie.NewPlanner()
	if err != nil {
		f.Fatal(err)
	}
	tokens := movie.NewTokens([]byte("fuzz-key"))
	f.Fuzz(func(t *testing.T, filter, orderBy string) {
		q, err := p.Plan(filter, orderBy)
		if err != nil {
			checkInvalid(t, err, "filter", "orderBy")
			return
		}
		checkQuery(t, q)
		again, err := p.Plan(filter, orderBy)
		if err != nil || again.Key() != q.Key() {
			t.Fatalf("planning %q / %q twice: %v, keys %q and %v", filter, orderBy, err, q.Key(), again)
		}
		// A page token made for this query resumes it, and only it.
		c := movie.Cursor{Value: movie.Value{Kind: movie.KindString, Str: filter}, ID: "m_" + orderBy + "x"}
		tok, err := tokens.EncodeCursor(q, c)
		if err != nil {
			t.Fatalf("encoding a cursor: %v", err)
		}
		got, err := tokens.DecodeCursor(q, tok)
		if err != nil || got.ID != c.ID || got.Value.Str != c.Value.Str {
			t.Fatalf("cursor round trip for %q / %q: %+v, %v", filter, orderBy, got, err)
		}
		other := *q
		other.Desc = !q.Desc
		if _, err := tokens.DecodeCursor(&other, tok); !errors.Is(err, movie.ErrInvalidPageToken) {
			t.Fatalf("a token of %q was accepted by %q: %v", q.Key(), other.Key(), err)
		}
	})
}

// checkInvalid asserts err is an InvalidError with a known reason and at least
// one violation, each on one of fields.
func checkInvalid(t *testing.T, err error, fields ...string) {
	t.Helper()
	var inv *movie.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("error %v (%T) is not an InvalidError", err, err)
	}
	if !knownReasons[inv.Reason] {
		t.Fatalf("unknown reason %q in %v", inv.Reason, err)
	}
	if len(inv.Violations) == 0 {
		t.Fatalf("no field violation in %v", err)
	}
	for _, v := range inv.Violations {
		if !slices.Contains(fields, v.Field) {
			t.Fatalf("violation on %q, want one of %v: %v", v.Field, fields, err)
		}
		if v.Description == "" {
			t.Fatalf("violation on %q without a description", v.Field)
		}
	}
}

// checkQuery asserts a planned query is made of known fields and typed
// values and that one of the declared indexes serves it in order.
func checkQuery(t *testing.T, q *movie.Query) {
	t.Helper()
	kinds, ok := fieldKinds[q.SortField]
	if !ok {
		t.Fatalf("sort field %q is not a document field", q.SortField)
	}
	if q.EqField != "" {
		want, ok := fieldKinds[q.EqField]
		if !ok || q.EqField == movie.FieldID || q.EqField == movie.FieldUpdateTime {
			t.Fatalf("equality on %q", q.EqField)
		}
		if !slices.Contains(want, q.EqValue.Kind) {
			t.Fatalf("equality on %s with a value of kind %d", q.EqField, q.EqValue.Kind)
		}
	}
	for _, b := range []*movie.Bound{q.Lower, q.Upper} {
		if b == nil {
			continue
		}
		if q.SortField == movie.FieldID {
			t.Fatalf("a range on _id: %s", q.Key())
		}
		// A numeric range may hold an int on a float field (they compare
		// numerically), never a string on a number or the reverse.
		k := b.Value.Kind
		numeric := k == movie.KindInt || k == movie.KindFloat
		wantNumeric := kinds[0] == movie.KindInt || kinds[0] == movie.KindFloat
		if numeric != wantNumeric || (!numeric && k != kinds[0]) {
			t.Fatalf("range on %s with a value of kind %d", q.SortField, k)
		}
	}
	var keys []string
	if q.EqField != "" {
		keys = append(keys, q.EqField)
	}
	if q.SortField != movie.FieldID {
		keys = append(keys, q.SortField)
	}
	keys = append(keys, movie.FieldID)
	if len(keys) == 1 {
		return
	}
	for _, ix := range movie.MovieIndexes {
		if slices.Equal(ix.Keys, keys) {
			return
		}
	}
	t.Fatalf("no index serves %s (keys %v)", q.Key(), keys)
}

// FuzzPageToken: a token is accepted only when it carries the MAC of this key
// over this query's binding (checked here independently of the code under
// test); everything else is INVALID_PAGE_TOKEN, and so is a genuine token
// with any one byte changed.
func FuzzPageToken(f *testing.F) {
	p, err := movie.NewPlanner()
	if err != nil {
		f.Fatal(err)
	}
	key := []byte("fuzz-key")
	tokens := movie.NewTokens(key)
	for _, s := range []struct{ filter, order string }{
		{"", ""}, {`genres:"Drama"`, "imdbScore desc"}, {"", "updateTime"}, {`title = "a*"`, "title"},
	} {
		q, err := p.Plan(s.filter, s.order)
		if err != nil {
			f.Fatal(err)
		}
		for _, c := range []movie.Cursor{
			{Value: movie.Value{Kind: movie.KindFloat, Flt: 8.5}, ID: "m_01"},
			{Value: movie.Value{Kind: movie.KindString, Str: "m_01"}, ID: "m_01"},
			{Value: movie.Value{}, ID: "m_02"},
		} {
			tok, err := tokens.EncodeCursor(q, c)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(tok, s.filter, s.order, uint16(3))
		}
	}
	f.Add("", "", "", uint16(0))
	f.Add("!!!", "", "", uint16(1))
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", "", uint16(2))
	f.Add(`eyJrIjo5OSwiZCI6Im1fMSJ9`, "", "", uint16(5))
	f.Fuzz(func(t *testing.T, tok, filter, order string, flip uint16) {
		q, err := p.Plan(filter, order)
		if err != nil {
			return
		}
		c, err := tokens.DecodeCursor(q, tok)
		if err != nil {
			if !errors.Is(err, movie.ErrInvalidPageToken) {
				t.Fatalf("token %q: %v, want ErrInvalidPageToken", tok, err)
			}
			checkInvalid(t, err, "pageToken")
		} else {
			if !signedFor(key, q.Key(), tok) {
				t.Fatalf("token %q was accepted for %s without a valid MAC", tok, q.Key())
			}
			if c.ID == "" || c.Value.Kind < movie.KindNull || c.Value.Kind > movie.KindTime {
				t.Fatalf("accepted token %q decoded into %+v", tok, c)
			}
		}

		// A genuine token with one byte changed is refused.
		genuine, err := tokens.EncodeCursor(q, movie.Cursor{Value: movie.Value{Kind: movie.KindString, Str: tok}, ID: "m_" + filter})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(genuine)
		if err != nil {
			t.Fatal(err)
		}
		i := int(flip) % len(raw)
		raw[i] ^= byte(flip>>8) | 1
		if _, err := tokens.DecodeCursor(q, base64.RawURLEncoding.EncodeToString(raw)); !errors.Is(err, movie.ErrInvalidPageToken) {
			t.Fatalf("a token with byte %d changed was accepted: %v", i, err)
		}
	})
}

// signedFor re-implements the token format's MAC check: base64url of a 16-byte
// truncated HMAC-SHA256 over "movies" NUL binding NUL payload, then the payload.
func signedFor(key []byte, binding, tok string) bool {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(raw) <= 16 {
		return false
	}
	h := hmac.New(sha256.New, key)
	h.Write([]byte("movies\x00" + binding + "\x00"))
	h.Write(raw[16:])
	return hmac.Equal(raw[:16], h.Sum(nil)[:16])
}

// movieFromProto copies the writable fields of a proto movie, as the gRPC
// layer does before validation.
func movieFromProto(p *catalogv1.Movie) *movie.Movie {
	m := &movie.Movie{
		ID: p.GetId(), Title: p.GetTitle(), OriginalTitle: p.GetOriginalTitle(), Year: p.Year,
		RuntimeMinutes: p.RuntimeMinutes, Genres: append([]string(nil), p.GetGenres()...),
		Cast: append([]string(nil), p.GetCast()...), IMDbScore: p.ImdbScore, Votes: p.Votes, Popularity: p.Popularity,
	}
	for _, d := range p.GetDirectors() {
		m.Directors = append(m.Directors, movie.DirectorRef{ID: d.GetId(), Name: d.GetName()})
	}
	return m
}

// FuzzCreateMovieJSON: a CreateMovieRequest body that protojson accepts is
// either refused with INVALID_ARGUMENT violations under "movie." or
// normalised into a movie within every documented limit; normalising it again
// changes nothing.
func FuzzCreateMovieJSON(f *testing.F) {
	for _, s := range []string{
		`{"movie":{"title":"The Wizard of Oz","year":1939,"genres":["Adventure"," family"],"directors":[{"name":"Victor Fleming"}],"imdbScore":8.3,"popularity":83}}`,
		`{"movie":{"title":"  "}}`,
		`{"movie":{"title":"x","year":1869}}`,
		`{"movie":{"title":"x","imdbScore":"NaN","popularity":"Infinity"}}`,
		`{"movie":{"title":"x","imdbScore":-0.0,"votes":"-1"}}`,
		`{"movie":{"title":"x","genres":["","  ","DRAMA","drama","sci-fi","a/b"]}}`,
		`{"movie":{"title":"x","directors":[{},{"id":"d_x"},{"id":"  ","name":"  "}]}}`,
		`{"movie":{"title":"x\u0000y","cast":["\u200b","a\tb"]}}`,
		`{"movie":{"title":{"$gt":""}}}`,
		`{"movie":{"title":"x","genres":{"$ne":null}}}`,
		`{"movie":{"title":"x","id":"m_1","etag":"\"9\"","createTime":"2020-01-01T00:00:00Z"},"requestId":"r"}`,
		`{"requestId":"only"}`,
		`{"movie":{"title":"x","runtimeMinutes":0,"year":2147483647}}`,
		`{"movie":{"title":"x","originalTitle":"` + strings.Repeat("é", 501) + `"}}`,
		`{"movie":{"title":"Ame\u0301lie","genres":["ǅungla", "ß"]}}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req catalogv1.CreateMovieRequest
		if err := protojson.Unmarshal(data, &req); err != nil || req.GetMovie() == nil {
			return
		}
		m := movieFromProto(req.GetMovie())
		if err := movie.ValidateMovie(m, "movie", now); err != nil {
			var inv *movie.InvalidError
			if !errors.As(err, &inv) || inv.Reason != movie.ReasonInvalidArgument || len(inv.Violations) == 0 {
				t.Fatalf("%s: %v (%T), want INVALID_ARGUMENT with violations", data, err, err)
			}
			for _, v := range inv.Violations {
				if !strings.HasPrefix(v.Field, "movie.") || v.Description == "" {
					t.Fatalf("%s: violation %+v", data, v)
				}
			}
			return
		}
		checkValidMovie(t, m, now)
		again := m.Clone()
		if err := movie.ValidateMovie(again, "movie", now); err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("normalising %+v again: %v, got %+v", m, err, again)
		}
	})
}

// checkValidMovie asserts the limits of API.md on a normalised movie.
func checkValidMovie(t *testing.T, m *movie.Movie, now time.Time) {
	t.Helper()
	text := func(field, s string, maxChars int, required bool) {
		switch {
		case !utf8.ValidString(s):
			t.Fatalf("%s %q is not UTF-8", field, s)
		case utf8.RuneCountInString(s) > maxChars:
			t.Fatalf("%s has %d characters", field, utf8.RuneCountInString(s))
		case s != strings.TrimSpace(s):
			t.Fatalf("%s %q is not trimmed", field, s)
		case required && s == "":
			t.Fatalf("%s is empty", field)
		}
		for _, r := range s {
			if unicode.IsControl(r) {
				t.Fatalf("%s %q holds a control character", field, s)
			}
		}
	}
	text("title", m.Title, movie.MaxTitleChars, true)
	text("originalTitle", m.OriginalTitle, movie.MaxTitleChars, false)
	if m.Year != nil && (*m.Year < movie.MinYear || int(*m.Year) > now.Year()+movie.MaxYearAhead) {
		t.Fatalf("year %d", *m.Year)
	}
	if m.RuntimeMinutes != nil && (*m.RuntimeMinutes < 1 || *m.RuntimeMinutes > movie.MaxRuntimeMinutes) {
		t.Fatalf("runtime %d", *m.RuntimeMinutes)
	}
	if s := m.IMDbScore; s != nil && (math.IsNaN(*s) || *s < 0 || *s > 10) {
		t.Fatalf("imdbScore %v", *s)
	}
	if p := m.Popularity; p != nil && (math.IsNaN(*p) || *p < 0 || *p > 100) {
		t.Fatalf("popularity %v", *p)
	}
	if m.Votes != nil && *m.Votes < 0 {
		t.Fatalf("votes %d", *m.Votes)
	}
	if len(m.Genres) > movie.MaxGenres || len(m.Directors) > movie.MaxDirectors || len(m.Cast) > movie.MaxCast {
		t.Fatalf("%d genres, %d directors, %d cast", len(m.Genres), len(m.Directors), len(m.Cast))
	}
	seen := map[string]bool{}
	for _, g := range m.Genres {
		text("genre", g, movie.MaxGenreChars, true)
		if movie.CanonicalGenre(g) != g || seen[g] {
			t.Fatalf("genre %q is not canonical or repeats in %q", g, m.Genres)
		}
		seen[g] = true
	}
	for _, c := range m.Cast {
		text("cast", c, movie.MaxCastChars, true)
	}
	for _, d := range m.Directors {
		switch {
		case d.ID == "" && d.Name == "":
			t.Fatalf("a director with neither id nor name")
		case d.ID != "" && !movie.ValidDirectorID(d.ID):
			t.Fatalf("director id %q", d.ID)
		case d.Name != "":
			text("director", d.Name, movie.MaxDirectorChars, true)
		}
	}
}
