package grpcapi_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/catalog/internal/grpcapi"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

func TestAuthorization(t *testing.T) {
	e := start(t)
	anon := t.Context()
	create := &catalogv1.CreateMovieRequest{Movie: &catalogv1.Movie{Title: "X"}}

	_, err := e.client.CreateMovie(anon, create)
	wantStatus(t, err, codes.Unauthenticated, "UNAUTHENTICATED")
	_, err = e.client.CreateMovie(e.as(authn.RoleUser), create)
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	_, err = e.client.CreateMovie(e.as(authn.RoleService), create)
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	_, err = e.client.DeleteMovie(e.as(authn.RoleUser), &catalogv1.DeleteMovieRequest{Id: movie.MovieIDForRequest("x")})
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")
	_, err = e.client.UpdateDirector(anon, &catalogv1.UpdateDirectorRequest{Director: &catalogv1.Director{Id: "d_x", Name: "y"}})
	wantStatus(t, err, codes.Unauthenticated, "UNAUTHENTICATED")

	// A forged credential is refused, never downgraded to anonymous.
	forged := metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer not.a.token")
	_, err = e.client.GetMovie(forged, &catalogv1.GetMovieRequest{Id: movie.MovieIDForRequest("x")})
	wantStatus(t, err, codes.Unauthenticated, "UNAUTHENTICATED")

	// Reads are open to everyone.
	_, err = e.client.GetMovie(anon, &catalogv1.GetMovieRequest{Id: movie.MovieIDForRequest("x")})
	wantStatus(t, err, codes.NotFound, grpcapi.ReasonMovieNotFound)
	if _, err := e.client.ListMovies(anon, &catalogv1.ListMoviesRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ListMovieChanges(anon, &catalogv1.ListMovieChangesRequest{}); err != nil {
		t.Fatal(err)
	}

	// The export needs a signed-in caller; the watch stream a service.
	stream, err := e.client.ExportMovies(anon, &catalogv1.ExportMoviesRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	wantStatus(t, err, codes.Unauthenticated, "UNAUTHENTICATED")
	watch, err := e.client.WatchMovieChanges(e.as(authn.RoleUser), &catalogv1.WatchMovieChangesRequest{})
	if err == nil {
		_, err = watch.Recv()
	}
	wantStatus(t, err, codes.PermissionDenied, "PERMISSION_DENIED")

	if m := e.create(&catalogv1.Movie{Title: "Allowed"}, ""); m.GetId() == "" {
		t.Fatal("admin create returned no id")
	}
}

func TestCreateAndRead(t *testing.T) {
	e := start(t)
	var header metadata.MD
	req := &catalogv1.CreateMovieRequest{RequestId: "imdb:the wizard of oz|1939|victor fleming", Movie: &catalogv1.Movie{
		Title: " The Wizard of Oz ", Year: ptr[int32](1939), Genres: []string{" adventure", "FAMILY", "Adventure"},
		Directors: []*catalogv1.DirectorRef{{Name: "Victor  Fleming"}}, ImdbScore: ptr(8.3), Popularity: ptr(83.0),
		Cast: []string{"Judy Garland"}, Id: "m_IGNORED", Etag: ptr(`"99"`),
	}}
	m, err := e.client.CreateMovie(e.admin(), req, grpc.Header(&header))
	if err != nil {
		t.Fatal(err)
	}
	if m.GetId() != movie.MovieIDForRequest(req.GetRequestId()) || m.GetTitle() != "The Wizard of Oz" || m.GetEtag() != `"1"` ||
		!slices.Equal(m.GetGenres(), []string{"Adventure", "Family"}) || m.GetDirectors()[0].GetName() != "Victor Fleming" ||
		m.GetDirectors()[0].GetId() != movie.DirectorIDForName("victor fleming") || m.GetCreateTime() == nil {
		t.Fatalf("created %v", m)
	}
	if got := header.Get(grpcapi.ReplayedHeader); fmt.Sprint(got) != "[false]" {
		t.Fatalf("replayed header %v", got)
	}
	// A retry returns the first result, and says so.
	again, err := e.client.CreateMovie(e.admin(), req, grpc.Header(&header))
	if err != nil || again.GetId() != m.GetId() || again.GetEtag() != `"1"` {
		t.Fatalf("retry: %v %v", again, err)
	}
	if got := header.Get(grpcapi.ReplayedHeader); fmt.Sprint(got) != "[true]" {
		t.Fatalf("replayed header %v", got)
	}
	// A director given by id, and one by name that resolves to it.
	other := e.create(&catalogv1.Movie{Title: "Gone with the Wind", Directors: []*catalogv1.DirectorRef{
		{Id: m.GetDirectors()[0].GetId()}, {Name: "VICTOR FLEMING"}}}, "")
	if len(other.GetDirectors()) != 1 || other.GetDirectors()[0].GetName() != "Victor Fleming" {
		t.Fatalf("directors %v", other.GetDirectors())
	}
	_, err = e.client.CreateMovie(e.admin(), &catalogv1.CreateMovieRequest{Movie: &catalogv1.Movie{Title: "X",
		Directors: []*catalogv1.DirectorRef{{Id: movie.DirectorIDForName("nobody")}}}})
	wantFields(t, err, "movie.directors[0].id")

	got, err := e.client.GetMovie(t.Context(), &catalogv1.GetMovieRequest{Id: m.GetId()})
	if err != nil || got.GetTitle() != m.GetTitle() {
		t.Fatalf("get: %v %v", got, err)
	}
	batch, err := e.client.BatchGetMovies(t.Context(), &catalogv1.BatchGetMoviesRequest{Ids: []string{other.GetId(), m.GetId(), other.GetId()}})
	if err != nil || len(batch.GetMovies()) != 3 || batch.GetMovies()[1].GetId() != m.GetId() {
		t.Fatalf("batch: %v %v", batch, err)
	}
	unknown := movie.MovieIDForRequest("nope")
	_, err = e.client.BatchGetMovies(t.Context(), &catalogv1.BatchGetMoviesRequest{Ids: []string{m.GetId(), unknown}})
	wantStatus(t, err, codes.NotFound, grpcapi.ReasonMovieNotFound)
	if !strings.Contains(err.Error(), unknown) {
		t.Fatalf("error does not name the id: %v", err)
	}
	_, err = e.client.BatchGetMovies(t.Context(), &catalogv1.BatchGetMoviesRequest{Ids: make([]string, 101)})
	wantFields(t, err, "ids")

	genres, err := e.client.ListGenres(t.Context(), &catalogv1.ListGenresRequest{})
	if err != nil || len(genres.GetGenres()) != 2 || genres.GetGenres()[0].GetMovieCount() != 1 {
		t.Fatalf("genres: %v %v", genres, err)
	}
	d, err := e.client.GetDirector(t.Context(), &catalogv1.GetDirectorRequest{Id: m.GetDirectors()[0].GetId()})
	if err != nil || d.GetMovieCount() != 2 || d.GetName() != "Victor Fleming" {
		t.Fatalf("director: %v %v", d, err)
	}
	list, err := e.client.ListDirectors(t.Context(), &catalogv1.ListDirectorsRequest{Filter: `name:"fleming"`})
	if err != nil || len(list.GetDirectors()) != 1 {
		t.Fatalf("list directors: %v %v", list, err)
	}
}

func TestBatchCreate(t *testing.T) {
	e := start(t)
	reqs := []*catalogv1.CreateMovieRequest{
		{Movie: &catalogv1.Movie{Title: "A", Directors: []*catalogv1.DirectorRef{{Name: "Jane Doe"}}}},
		{Movie: &catalogv1.Movie{Title: "B", Directors: []*catalogv1.DirectorRef{{Name: "jane doe"}}}, RequestId: "b"},
	}
	var header metadata.MD
	resp, err := e.client.BatchCreateMovies(e.admin(), &catalogv1.BatchCreateMoviesRequest{Requests: reqs, RequestId: "batch-1"})
	if err != nil || len(resp.GetMovies()) != 2 || resp.GetMovies()[1].GetId() != movie.MovieIDForRequest("b") ||
		resp.GetMovies()[0].GetId() != movie.MovieIDForRequest("batch-1/0") ||
		resp.GetMovies()[0].GetDirectors()[0].GetId() != resp.GetMovies()[1].GetDirectors()[0].GetId() {
		t.Fatalf("batch: %v %v", resp, err)
	}
	again, err := e.client.BatchCreateMovies(e.admin(), &catalogv1.BatchCreateMoviesRequest{Requests: reqs, RequestId: "batch-1"}, grpc.Header(&header))
	if err != nil || again.GetMovies()[0].GetId() != resp.GetMovies()[0].GetId() || fmt.Sprint(header.Get(grpcapi.ReplayedHeader)) != "[0,1]" {
		t.Fatalf("replay: %v %v %v", again, header, err)
	}
	// The batch is validated as a whole: one bad movie writes nothing.
	bad := []*catalogv1.CreateMovieRequest{
		{Movie: &catalogv1.Movie{Title: "C"}, RequestId: "c"},
		{Movie: &catalogv1.Movie{Title: "D", Year: ptr[int32](1800)}},
	}
	_, err = e.client.BatchCreateMovies(e.admin(), &catalogv1.BatchCreateMoviesRequest{Requests: bad})
	wantFields(t, err, "requests[1].movie.year")
	_, err = e.client.GetMovie(t.Context(), &catalogv1.GetMovieRequest{Id: movie.MovieIDForRequest("c")})
	wantStatus(t, err, codes.NotFound, grpcapi.ReasonMovieNotFound)
}

func TestValidationAndQueries(t *testing.T) {
	e := start(t)
	_, err := e.client.CreateMovie(e.admin(), &catalogv1.CreateMovieRequest{Movie: &catalogv1.Movie{Title: " ", ImdbScore: ptr(11.0)}})
	wantFields(t, err, "movie.title", "movie.imdbScore")
	_, err = e.client.CreateMovie(e.admin(), &catalogv1.CreateMovieRequest{})
	wantFields(t, err, "movie")
	_, err = e.client.CreateMovie(e.admin(), &catalogv1.CreateMovieRequest{Movie: &catalogv1.Movie{Title: "x"}, RequestId: strings.Repeat("r", 101)})
	wantFields(t, err, "requestId")
	_, err = e.client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{PageSize: -1})
	wantFields(t, err, "pageSize")
	_, err = e.client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{Filter: "year > 1990"})
	wantStatus(t, err, codes.InvalidArgument, movie.ReasonUnsupportedQuery)
	if !strings.Contains(err.Error(), "/v1/search/movies") {
		t.Fatalf("does not point to search: %v", err)
	}
	_, err = e.client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{Filter: `cast:"x"`})
	wantStatus(t, err, codes.InvalidArgument, movie.ReasonInvalidFilter)
	_, err = e.client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{OrderBy: "votes"})
	wantStatus(t, err, codes.InvalidArgument, movie.ReasonInvalidOrderBy)

	for i := range 3 {
		e.create(&catalogv1.Movie{Title: fmt.Sprint("M", i), Genres: []string{"Drama"}, ImdbScore: ptr(float64(i))}, "")
	}
	page, err := e.client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{Filter: `genres:"Drama"`, PageSize: 2})
	if err != nil || len(page.GetMovies()) != 2 || page.GetNextPageToken() == "" {
		t.Fatalf("page: %v %v", page, err)
	}
	_, err = e.client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{Filter: `genres:"Comedy"`, PageToken: page.GetNextPageToken()})
	wantStatus(t, err, codes.InvalidArgument, movie.ReasonInvalidPageToken)
	last, err := e.client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{Filter: `genres:"Drama"`, PageSize: 2, PageToken: page.GetNextPageToken()})
	if err != nil || len(last.GetMovies()) != 1 || last.GetNextPageToken() != "" {
		t.Fatalf("last page: %v %v", last, err)
	}
	big, err := e.client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{PageSize: 1000, OrderBy: "imdbScore desc"})
	if err != nil || len(big.GetMovies()) != 3 || big.GetMovies()[0].GetImdbScore() != 2 {
		t.Fatalf("ordered: %v %v", big, err)
	}
}

func TestUpdateAndDelete(t *testing.T) {
	e := start(t)
	m := e.create(&catalogv1.Movie{Title: "Old", Year: ptr[int32](2000), Genres: []string{"Drama"}}, "")
	mask := func(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }

	up, err := e.client.UpdateMovie(e.admin(), &catalogv1.UpdateMovieRequest{
		Movie: &catalogv1.Movie{Id: m.GetId(), Title: "New", Year: ptr[int32](1999), Etag: m.Etag}, UpdateMask: mask("title")})
	if err != nil || up.GetTitle() != "New" || up.GetYear() != 2000 || up.GetEtag() != `"2"` || !slices.Equal(up.GetGenres(), []string{"Drama"}) {
		t.Fatalf("update: %v %v", up, err)
	}
	_, err = e.client.UpdateMovie(e.admin(), &catalogv1.UpdateMovieRequest{
		Movie: &catalogv1.Movie{Id: m.GetId(), Title: "Stale", Etag: m.Etag}, UpdateMask: mask("title")})
	wantStatus(t, err, codes.Aborted, grpcapi.ReasonETagMismatch)
	for _, p := range []string{"etag", "create_time", "id", "nope"} {
		_, err = e.client.UpdateMovie(e.admin(), &catalogv1.UpdateMovieRequest{Movie: &catalogv1.Movie{Id: m.GetId()}, UpdateMask: mask(p)})
		wantFields(t, err, "updateMask")
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error does not name %s: %v", p, err)
		}
	}
	_, err = e.client.UpdateMovie(e.admin(), &catalogv1.UpdateMovieRequest{
		Movie: &catalogv1.Movie{Id: m.GetId(), Popularity: ptr(120.0)}, UpdateMask: mask("popularity")})
	wantFields(t, err, "movie.popularity")
	// Without a mask, the populated fields are updated (AIP-134).
	up, err = e.client.UpdateMovie(e.admin(), &catalogv1.UpdateMovieRequest{Movie: &catalogv1.Movie{Id: m.GetId(), Popularity: ptr(50.0)}})
	if err != nil || up.GetPopularity() != 50 || up.GetTitle() != "New" {
		t.Fatalf("maskless update: %v %v", up, err)
	}

	_, err = e.client.DeleteMovie(e.admin(), &catalogv1.DeleteMovieRequest{Id: m.GetId(), Etag: `"1"`})
	wantStatus(t, err, codes.Aborted, grpcapi.ReasonETagMismatch)
	if _, err := e.client.DeleteMovie(e.admin(), &catalogv1.DeleteMovieRequest{Id: m.GetId(), Etag: up.GetEtag()}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.GetMovie(t.Context(), &catalogv1.GetMovieRequest{Id: m.GetId()})
	wantStatus(t, err, codes.NotFound, grpcapi.ReasonMovieNotFound)
	_, err = e.client.DeleteMovie(e.admin(), &catalogv1.DeleteMovieRequest{Id: m.GetId()})
	wantStatus(t, err, codes.NotFound, grpcapi.ReasonMovieNotFound)
	_, err = e.client.UpdateMovie(e.admin(), &catalogv1.UpdateMovieRequest{Movie: &catalogv1.Movie{Id: m.GetId(), Title: "x"}, UpdateMask: mask("title")})
	wantStatus(t, err, codes.NotFound, grpcapi.ReasonMovieNotFound)

	changes, err := e.client.ListMovieChanges(t.Context(), &catalogv1.ListMovieChangesRequest{})
	if err != nil || len(changes.GetChanges()) != 1 || changes.GetChanges()[0].GetKind() != catalogv1.ChangeKind_CHANGE_KIND_DELETED ||
		changes.GetNextPageToken() == "" {
		t.Fatalf("changes: %v %v", changes, err)
	}
}

// TestConcurrentUpdatesSameETag: two updates with the same etag at the same
// time: exactly one succeeds, the other is ABORTED with ETAG_MISMATCH.
func TestConcurrentUpdatesSameETag(t *testing.T) {
	e := start(t)
	for round := range 5 {
		m := e.create(&catalogv1.Movie{Title: "Race"}, "")
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				_, errs[i] = e.client.UpdateMovie(e.admin(), &catalogv1.UpdateMovieRequest{
					Movie:      &catalogv1.Movie{Id: m.GetId(), Title: fmt.Sprint("writer ", i), Etag: m.Etag},
					UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"title"}}})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
				continue
			}
			wantStatus(t, err, codes.Aborted, grpcapi.ReasonETagMismatch)
		}
		if ok != 1 {
			t.Fatalf("round %d: %d updates succeeded: %v", round, ok, errs)
		}
		got, _ := e.client.GetMovie(t.Context(), &catalogv1.GetMovieRequest{Id: m.GetId()})
		if got.GetEtag() != `"2"` {
			t.Fatalf("round %d: etag %s", round, got.GetEtag())
		}
	}
}

// TestRenameFansOut: renaming a director with three movies shows the new
// name in all three, and the change feed lists them.
func TestRenameFansOut(t *testing.T) {
	e := start(t)
	var ids []string
	for i := range 3 {
		ids = append(ids, e.create(&catalogv1.Movie{Title: fmt.Sprint("Film ", i),
			Directors: []*catalogv1.DirectorRef{{Name: "Jane Doe"}, {Name: "Other Person"}}}, "").GetId())
	}
	feed, err := e.client.ListMovieChanges(t.Context(), &catalogv1.ListMovieChangesRequest{PageSize: 1000})
	if err != nil || len(feed.GetChanges()) != 3 {
		t.Fatalf("feed: %v %v", feed, err)
	}
	dirID := movie.DirectorIDForName("jane doe")
	d, err := e.client.UpdateDirector(e.admin(), &catalogv1.UpdateDirectorRequest{
		Director: &catalogv1.Director{Id: dirID, Name: "Jane Smith"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}})
	if err != nil || d.GetName() != "Jane Smith" || d.GetMovieCount() != 3 {
		t.Fatalf("rename: %v %v", d, err)
	}
	batch, err := e.client.BatchGetMovies(t.Context(), &catalogv1.BatchGetMoviesRequest{Ids: ids})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range batch.GetMovies() {
		if m.GetDirectors()[0].GetName() != "Jane Smith" || m.GetDirectors()[1].GetName() != "Other Person" || m.GetEtag() != `"2"` {
			t.Fatalf("not renamed: %v", m)
		}
	}
	after, err := e.client.ListMovieChanges(t.Context(), &catalogv1.ListMovieChangesRequest{PageToken: feed.GetNextPageToken(), PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var changed []string
	for _, c := range after.GetChanges() {
		changed = append(changed, c.GetId())
	}
	slices.Sort(changed)
	slices.Sort(ids)
	if !slices.Equal(changed, ids) {
		t.Fatalf("feed after rename lists %v, want %v", changed, ids)
	}
	// The old name still resolves to the renamed director; renaming again
	// to the same name changes nothing.
	m := e.create(&catalogv1.Movie{Title: "Later", Directors: []*catalogv1.DirectorRef{{Name: "Jane Doe"}}}, "")
	if m.GetDirectors()[0].GetId() != dirID || m.GetDirectors()[0].GetName() != "Jane Smith" {
		t.Fatalf("old name resolved to %v", m.GetDirectors())
	}
	same, err := e.client.UpdateDirector(e.admin(), &catalogv1.UpdateDirectorRequest{Director: &catalogv1.Director{Id: dirID, Name: "Jane Smith"}})
	if err != nil || same.GetEtag() != d.GetEtag() {
		t.Fatalf("idempotent rename: %v %v", same, err)
	}
	_, err = e.client.UpdateDirector(e.admin(), &catalogv1.UpdateDirectorRequest{Director: &catalogv1.Director{Id: dirID, Name: "X"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"movie_count"}}})
	wantFields(t, err, "updateMask")
}

// TestWalkWhileWriting walks every page of `imdbScore desc` while another
// client creates and deletes movies: every movie that existed throughout
// appears exactly once.
func TestWalkWhileWriting(t *testing.T) {
	e := start(t)
	stable := map[string]bool{}
	reqs := make([]*catalogv1.CreateMovieRequest, 40)
	for i := range reqs {
		reqs[i] = &catalogv1.CreateMovieRequest{Movie: &catalogv1.Movie{Title: fmt.Sprint("Seed ", i), ImdbScore: ptr(float64(i%9) + 0.5)}}
	}
	resp, err := e.client.BatchCreateMovies(e.admin(), &catalogv1.BatchCreateMoviesRequest{Requests: reqs})
	if err != nil {
		t.Fatal(err)
	}
	var victims []string
	for i, m := range resp.GetMovies() {
		if i%10 == 0 {
			victims = append(victims, m.GetId()) // deleted during the walk
		} else {
			stable[m.GetId()] = true
		}
	}
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m, err := e.client.CreateMovie(e.admin(), &catalogv1.CreateMovieRequest{Movie: &catalogv1.Movie{
				Title: fmt.Sprint("Churn ", i), ImdbScore: ptr(float64(i%10) + 0.25)}})
			if err != nil {
				writerDone <- err
				return
			}
			del := m.GetId()
			if i < len(victims) {
				del = victims[i]
			}
			if i%2 == 0 {
				if _, err := e.client.DeleteMovie(e.admin(), &catalogv1.DeleteMovieRequest{Id: del}); err != nil {
					writerDone <- err
					return
				}
			}
		}
	}()
	seen := map[string]int{}
	token := ""
	pages := 0
	for {
		page, err := e.client.ListMovies(t.Context(), &catalogv1.ListMoviesRequest{OrderBy: "imdbScore desc", PageSize: 6, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		var prev *catalogv1.Movie
		for _, m := range page.GetMovies() {
			seen[m.GetId()]++
			if prev != nil && prev.GetImdbScore() < m.GetImdbScore() {
				t.Fatalf("out of order: %v before %v", prev.GetImdbScore(), m.GetImdbScore())
			}
			prev = m
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	close(stop)
	if err := <-writerDone; err != nil {
		t.Fatal(err)
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("%s listed %d times", id, n)
		}
	}
	for id := range stable {
		if seen[id] != 1 {
			t.Errorf("%s, present throughout, listed %d times", id, seen[id])
		}
	}
	t.Logf("%d pages, %d movies seen", pages, len(seen))
}

func TestExportThenChanges(t *testing.T) {
	e := start(t)
	for i := range 5 {
		e.create(&catalogv1.Movie{Title: fmt.Sprint("Export ", i)}, "")
	}
	stream, err := e.client.ExportMovies(e.as(authn.RoleUser), &catalogv1.ExportMoviesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if chunk.GetContentType() != "application/x-ndjson" {
			t.Fatalf("content type %q", chunk.GetContentType())
		}
		body.Write(chunk.GetData())
	}
	var movies int
	var end *catalogv1.ExportEnd
	sc := bufio.NewScanner(&body)
	for sc.Scan() {
		var rec catalogv1.ExportRecord
		if err := protojson.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if rec.GetMovie() != nil {
			movies++
		}
		if rec.GetEnd() != nil {
			end = rec.GetEnd()
		}
	}
	if movies != 5 || end == nil || end.GetMovieCount() != 5 || end.GetChangesPageToken() == "" {
		t.Fatalf("export: %d movies, end %v", movies, end)
	}
	added := e.create(&catalogv1.Movie{Title: "After the export"}, "")
	poll(t, 5*time.Second, func() error {
		ch, err := e.client.ListMovieChanges(t.Context(), &catalogv1.ListMovieChangesRequest{PageToken: end.GetChangesPageToken()})
		if err != nil {
			return err
		}
		for _, c := range ch.GetChanges() {
			if c.GetId() == added.GetId() {
				return nil
			}
		}
		return fmt.Errorf("the change after the export is missing from %v", ch.GetChanges())
	})
}

func TestWatch(t *testing.T) {
	e := start(t)
	stream, err := e.client.WatchMovieChanges(e.as(authn.RoleService), &catalogv1.WatchMovieChangesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m := e.create(&catalogv1.Movie{Title: "Watched"}, "")
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetNextPageToken() == "" {
			t.Fatal("batch without a token")
		}
		for _, c := range resp.GetChanges() {
			if c.GetId() == m.GetId() && c.GetKind() == catalogv1.ChangeKind_CHANGE_KIND_UPSERTED {
				return
			}
		}
	}
}
