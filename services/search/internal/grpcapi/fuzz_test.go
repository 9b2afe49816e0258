package grpcapi_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
)

// FuzzSearchMovies feeds arbitrary q, filter and order_by through parsing,
// query compilation and the index: the answer is a result or
// INVALID_ARGUMENT, never a panic or an internal error.
func FuzzSearchMovies(f *testing.F) {
	f.Add("godfathr", `genres:"Drama" AND year >= 1990`, "popularity desc")
	f.Add(`"unbalanced`, `title:"x`, "title")
	f.Add(`+a -b ~2 ^3 /re.*/ [x TO y]`, `NOT (year < 1 OR imdbScore > 9.5)`, "year desc, title")
	f.Add("Ame\u0301lie", `directors.name:"Jean"`, "")
	s, _ := newServer(f)
	f.Fuzz(func(t *testing.T, q, filter, order string) {
		for _, size := range []int32{0, 3} {
			resp, err := s.SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{Q: q, Filter: filter, OrderBy: order, PageSize: size})
			if err != nil {
				if c := status.Code(err); c != codes.InvalidArgument {
					t.Fatalf("q=%q filter=%q order=%q: %v", q, filter, order, err)
				}
				continue
			}
			if resp.GetNextPageToken() != "" {
				if _, err := s.SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{Q: q, Filter: filter, OrderBy: order, PageSize: size, PageToken: resp.GetNextPageToken()}); err != nil {
					t.Fatalf("second page of q=%q filter=%q order=%q: %v", q, filter, order, err)
				}
			}
		}
		if q != "" {
			if _, err := s.SuggestTitles(t.Context(), &searchv1.SuggestTitlesRequest{Prefix: q}); err != nil && status.Code(err) != codes.InvalidArgument {
				t.Fatalf("suggest %q: %v", q, err)
			}
		}
	})
}
