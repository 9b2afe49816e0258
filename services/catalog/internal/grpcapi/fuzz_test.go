package grpcapi_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/platform/apierr"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

// adminIn returns a context of t carrying an admin token signed by e's key.
// (The harness's e.as belongs to the test that started e; inside a fuzz
// function only t may be used.)
func adminIn(t *testing.T, e *env) context.Context {
	now := time.Now()
	claims := authn.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: issuer, Audience: jwt.ClaimStrings{audience}, Subject: "u_fuzz",
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), ID: fmt.Sprint(now.UnixNano()),
	}, Role: authn.RoleAdmin}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = kid
	raw, err := tok.SignedString(e.key)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+raw)
}

// checkRefusal asserts a refused write is one of the codes a client can act
// on, with an ErrorInfo reason, and field violations when the input was bad:
// never INTERNAL or UNKNOWN (a panic in a handler surfaces as one of those).
func checkRefusal(t *testing.T, what string, err error, allowed ...codes.Code) {
	t.Helper()
	st, _ := status.FromError(err)
	ok := false
	for _, c := range allowed {
		ok = ok || st.Code() == c
	}
	if !ok {
		t.Fatalf("%s: %s %q, want one of %v", what, st.Code(), st.Message(), allowed)
	}
	if apierr.Reason(err) == "" {
		t.Fatalf("%s: %s without an ErrorInfo reason", what, st.Code())
	}
	if st.Code() == codes.InvalidArgument && len(apierr.Violations(err)) == 0 {
		t.Fatalf("%s: INVALID_ARGUMENT without field violations: %s", what, st.Message())
	}
}

// checkStored asserts the invariants of a movie the API returned.
func checkStored(t *testing.T, what string, m *catalogv1.Movie) {
	t.Helper()
	title := m.GetTitle()
	if !movie.ValidMovieID(m.GetId()) || title == "" || title != strings.TrimSpace(title) ||
		utf8.RuneCountInString(title) > movie.MaxTitleChars || m.GetEtag() == "" || m.GetCreateTime() == nil {
		t.Fatalf("%s: returned %v", what, m)
	}
	if len(m.GetGenres()) > movie.MaxGenres || len(m.GetDirectors()) > movie.MaxDirectors || len(m.GetCast()) > movie.MaxCast {
		t.Fatalf("%s: returned %v", what, m)
	}
	for _, d := range m.GetDirectors() {
		if !movie.ValidDirectorID(d.GetId()) || d.GetName() == "" {
			t.Fatalf("%s: director %v", what, d)
		}
	}
}

// FuzzCreateMovieRequestJSON: any JSON body protojson accepts as a
// CreateMovieRequest, sent by an admin through the real server, is created
// (within every documented limit) or refused with INVALID_ARGUMENT and field
// violations (ALREADY_EXISTS for a reused request id): never a panic, never
// INTERNAL.
func FuzzCreateMovieRequestJSON(f *testing.F) {
	for _, s := range []string{
		`{"movie":{"title":"The Wizard of Oz","year":1939,"genres":["Adventure"],"directors":[{"name":"Victor Fleming"}]},"requestId":"r1"}`,
		`{"movie":{"title":"x","directors":[{"id":"d_0123456789ABCDEFGHJKMNPQRS"}]}}`,
		`{"movie":{"title":"x","directors":[{"id":"{\"$gt\":\"\"}"}]}}`,
		`{"movie":{"title":"{\"$ne\":null}","genres":["$where"],"cast":["$gt"]},"requestId":"{\"$gt\":\"\"}"}`,
		`{"movie":{"title":" ","imdbScore":11}}`,
		`{}`,
		`{"movie":{"title":"x","imdbScore":"NaN"}}`,
		`{"movie":{"title":"x","year":-5,"runtimeMinutes":-1,"votes":"-9"}}`,
		`{"movie":{"title":"x","directors":[{"name":"` + strings.Repeat("n", 201) + `"}]}}`,
	} {
		f.Add([]byte(s))
	}
	e := start(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req catalogv1.CreateMovieRequest
		if err := protojson.Unmarshal(data, &req); err != nil {
			return
		}
		m, err := e.client.CreateMovie(adminIn(t, e), &req)
		if err != nil {
			checkRefusal(t, string(data), err, codes.InvalidArgument, codes.AlreadyExists)
			return
		}
		checkStored(t, string(data), m)
	})
}

// FuzzUpdateMovieRequestJSON: any JSON body protojson accepts as an
// UpdateMovieRequest (its movie aimed at an existing movie when it names
// none) is applied or refused with INVALID_ARGUMENT, NOT_FOUND or ABORTED:
// never INTERNAL. An applied update bumps the revision by one and never
// changes the id or the create time (output-only fields are never written).
func FuzzUpdateMovieRequestJSON(f *testing.F) {
	for _, s := range []string{
		`{"movie":{"title":"New"},"updateMask":"title"}`,
		`{"movie":{"title":"New","id":"m_x"},"updateMask":"title"}`,
		`{"movie":{"title":"New"},"updateMask":"id,etag,createTime"}`,
		`{"movie":{"title":"New"},"updateMask":"*"}`,
		`{"movie":{"imdbScore":7.5}}`,
		`{"movie":{"genres":["a","A"],"etag":"\"1\""},"updateMask":"genres"}`,
		`{"movie":{"etag":"W/\"x\""},"updateMask":"title"}`,
		`{"movie":{"title":"x"},"updateMask":"title,title,directors.name"}`,
		`{"movie":{"directors":[{"name":"A"},{"name":"a"}]},"updateMask":"directors"}`,
		`{"movie":{"title":"{\"$set\":{\"title\":\"pwned\"}}"},"updateMask":"title"}`,
		`{"updateMask":"title"}`,
	} {
		f.Add([]byte(s))
	}
	e := start(f)
	seed, err := e.client.CreateMovie(e.admin(), &catalogv1.CreateMovieRequest{Movie: &catalogv1.Movie{Title: "Target", Year: ptr[int32](2000)}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req catalogv1.UpdateMovieRequest
		if err := protojson.Unmarshal(data, &req); err != nil {
			return
		}
		if req.GetMovie() != nil && req.GetMovie().GetId() == "" {
			req.Movie.Id = seed.GetId()
		}
		before, err := e.client.GetMovie(t.Context(), &catalogv1.GetMovieRequest{Id: seed.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.client.UpdateMovie(adminIn(t, e), &req)
		if err != nil {
			checkRefusal(t, string(data), err, codes.InvalidArgument, codes.NotFound, codes.Aborted)
			return
		}
		checkStored(t, string(data), got)
		if got.GetId() != req.GetMovie().GetId() {
			t.Fatalf("%s: updated %s, asked for %s", data, got.GetId(), req.GetMovie().GetId())
		}
		if got.GetId() != seed.GetId() {
			return // another movie made by a fuzzed create: no baseline
		}
		bRev, _ := movie.ParseETag(before.GetEtag())
		gRev, _ := movie.ParseETag(got.GetEtag())
		if gRev != bRev+1 || !got.GetCreateTime().AsTime().Equal(before.GetCreateTime().AsTime()) {
			t.Fatalf("%s: revision %d -> %d, create time %v -> %v", data, bRev, gRev,
				before.GetCreateTime().AsTime(), got.GetCreateTime().AsTime())
		}
	})
}

// TestNoOperatorInjection sends MongoDB operators and operator-shaped JSON
// where users put values (filters, ids, page tokens, JSON bodies, update
// masks): each is refused as bad input or stored and matched as literal text,
// and no request ever sees a movie it did not ask for.
func TestNoOperatorInjection(t *testing.T) {
	e := start(t)
	plain := e.create(&catalogv1.Movie{Title: "Plain", Genres: []string{"Drama"}, Year: ptr[int32](1999)}, "")
	literal := e.create(&catalogv1.Movie{Title: `{"$gt": ""}`, Genres: []string{`$ne`}, Cast: []string{`{"$where": "1"}`}}, "")
	if literal.GetTitle() != `{"$gt": ""}` || literal.GetCast()[0] != `{"$where": "1"}` {
		t.Fatalf("operator-shaped text was not stored literally: %v", literal)
	}

	// Filters: an operator-shaped value matches only the literal text.
	for _, filter := range []string{
		`title = "{\"$gt\": \"\"}"`, `genres:"$ne"`, `genres:"{\"$ne\": null}"`, `directors.name = "{\"$gt\": \"\"}"`,
		`directors.id = "{\"$ne\": \"\"}"`, `title = "$where*"`, `title = "{*"`,
	} {
		resp, err := e.client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{Filter: filter, OrderBy: orderFor(filter)})
		if err != nil {
			checkRefusal(t, filter, err, codes.InvalidArgument)
			continue
		}
		for _, m := range resp.GetMovies() {
			if m.GetId() == plain.GetId() {
				t.Errorf("filter %s matched %q", filter, m.GetTitle())
			}
		}
	}
	for _, filter := range []string{`{"$gt": ""}`, `$where = "1"`, `title.$gt = ""`, `year = {"$gt": 0}`, `genres:{"$ne":1}`} {
		_, err := e.client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{Filter: filter})
		checkRefusal(t, filter, err, codes.InvalidArgument)
	}
	for _, order := range []string{`$natural`, `title.$gt`, `{"title": 1}`} {
		_, err := e.client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{OrderBy: order})
		checkRefusal(t, order, err, codes.InvalidArgument)
	}

	// Ids and tokens: an operator-shaped id is not an id.
	for _, id := range []string{`{"$gt": ""}`, `$ne`, `m_{"$gt":""}`} {
		_, err := e.client.GetMovie(t.Context(), &catalogv1.GetMovieRequest{Id: id})
		checkRefusal(t, id, err, codes.InvalidArgument, codes.NotFound)
		_, err = e.client.BatchGetMovies(t.Context(), &catalogv1.BatchGetMoviesRequest{Ids: []string{plain.GetId(), id}})
		checkRefusal(t, id, err, codes.InvalidArgument, codes.NotFound)
		_, err = e.client.DeleteMovie(e.admin(), &catalogv1.DeleteMovieRequest{Id: id})
		checkRefusal(t, id, err, codes.InvalidArgument, codes.NotFound)
	}
	_, err := e.client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{PageToken: `{"$gt":""}`})
	checkRefusal(t, "page token", err, codes.InvalidArgument)

	// JSON bodies: an object where a string belongs is malformed JSON for
	// the message; operator-shaped strings are text.
	for _, body := range []string{
		`{"movie":{"title":{"$gt":""}}}`, `{"movie":{"title":"x","genres":{"$ne":null}}}`,
		`{"movie":{"title":"x","year":{"$gt":0}}}`, `{"movie":{"title":"x","$where":"1"}}`,
	} {
		if err := protojson.Unmarshal([]byte(body), &catalogv1.CreateMovieRequest{}); err == nil {
			t.Errorf("protojson accepted %s", body)
		}
	}
	upd, err := e.client.UpdateMovie(e.admin(), &catalogv1.UpdateMovieRequest{
		Movie:      &catalogv1.Movie{Id: plain.GetId(), Title: `{"$set": {"title": "pwned"}}`},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"title"}}})
	if err != nil || upd.GetTitle() != `{"$set": {"title": "pwned"}}` {
		t.Fatalf("update with operator-shaped text: %v %v", upd, err)
	}
	for _, paths := range [][]string{{"$set"}, {"title.$"}, {"id"}, {"etag"}, {"create_time"}, {"update_time"}} {
		_, err := e.client.UpdateMovie(e.admin(), &catalogv1.UpdateMovieRequest{
			Movie: &catalogv1.Movie{Id: plain.GetId(), Title: "y"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
		checkRefusal(t, fmt.Sprint(paths), err, codes.InvalidArgument)
	}
	// Nothing else changed.
	got, err := e.client.GetMovie(t.Context(), &catalogv1.GetMovieRequest{Id: literal.GetId()})
	if err != nil || got.GetTitle() != literal.GetTitle() || got.GetEtag() != literal.GetEtag() {
		t.Fatalf("the literal movie changed: %v %v", got, err)
	}
	// Directors: a contains filter is a literal substring, not a pattern.
	e.create(&catalogv1.Movie{Title: "By dots", Directors: []*catalogv1.DirectorRef{{Name: "A.B"}}}, "")
	for filter, want := range map[string]int{`name:".*"`: 0, `name:"a.b"`: 1, `name:"a.*"`: 0, `name:"^a"`: 0} {
		resp, err := e.client.ListDirectors(t.Context(), &catalogv1.ListDirectorsRequest{Filter: filter})
		if err != nil || len(resp.GetDirectors()) != want {
			t.Errorf("directors %s: %d, want %d (%v)", filter, len(resp.GetDirectors()), want, err)
		}
	}
}

// orderFor gives a title prefix filter the order it needs.
func orderFor(filter string) string {
	if strings.HasPrefix(filter, "title") && strings.Contains(filter, "*") {
		return "title"
	}
	return ""
}
