package restmux

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/gateway/internal/problem"
	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
	"github.com/marquee-dev/marquee/services/platform/apierr"
)

// creator answers CreateMovie with movie, or err.
type creator struct {
	catalogv1.CatalogServiceClient
	movie *catalogv1.Movie
	err   error
}

func (c *creator) CreateMovie(context.Context, *catalogv1.CreateMovieRequest, ...grpc.CallOption) (*catalogv1.Movie, error) {
	return c.movie, c.err
}

func (c *creator) BatchCreateMovies(context.Context, *catalogv1.BatchCreateMoviesRequest, ...grpc.CallOption) (*catalogv1.BatchCreateMoviesResponse, error) {
	return &catalogv1.BatchCreateMoviesResponse{Movies: []*catalogv1.Movie{c.movie}}, c.err
}

func TestCreateAnswers201WithLocation(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		body       string
		movie      *catalogv1.Movie
		err        error
		status     int
		location   string
	}{
		{name: "created", path: "/v1/movies", body: `{"title":"Heat"}`, movie: &catalogv1.Movie{Id: "m_1 x", Title: "Heat"}, status: http.StatusCreated, location: "/v1/movies/m_1%20x"},
		{name: "refused", path: "/v1/movies", body: `{"title":"Heat"}`, err: apierr.New(codes.PermissionDenied, "PERMISSION_DENIED", "admins only"), status: http.StatusForbidden},
		{name: "batch", path: "/v1/movies:batchCreate", body: `{"requests":[{"movie":{"title":"Heat"}}]}`, movie: &catalogv1.Movie{Id: "m_2"}, status: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(t.Context(), Options{
				Catalog:  &creator{movie: tc.movie, err: tc.err},
				Problems: &problem.Handler{Logger: slog.New(slog.DiscardHandler)},
			})
			if err != nil {
				t.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
			r, _ = reqinfo.New(r)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status || w.Header().Get("Location") != tc.location {
				t.Errorf("%d Location %q, want %d %q: %s", w.Code, w.Header().Get("Location"), tc.status, tc.location, w.Body)
			}
		})
	}
}

// A failure after the status was chosen (a marshaling error) answers its
// own status.
func TestStatusWriterYieldsToAnExplicitStatus(t *testing.T) {
	rec := httptest.NewRecorder()
	sw := &statusWriter{ResponseWriter: rec, status: http.StatusCreated}
	sw.WriteHeader(http.StatusInternalServerError)
	_, _ = sw.Write([]byte("{}"))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", rec.Code)
	}
	rec = httptest.NewRecorder()
	sw = &statusWriter{ResponseWriter: rec, status: http.StatusCreated}
	_, _ = sw.Write([]byte("{}"))
	if rec.Code != http.StatusCreated {
		t.Errorf("status = %d, want 201", rec.Code)
	}
}
