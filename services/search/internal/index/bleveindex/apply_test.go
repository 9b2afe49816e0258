package bleveindex_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/search/internal/fixtures"
	"github.com/marquee-dev/marquee/services/search/internal/index"
	"github.com/marquee-dev/marquee/services/search/internal/query"
	"github.com/marquee-dev/marquee/services/search/internal/testindex"
)

func TestApplyUpdatesEveryPath(t *testing.T) {
	x, _ := openFixtures(t, 2)
	m := &catalogv1.Movie{Id: "m_new", Title: "Quixotic Zebra", Year: proto.Int32(1999), Genres: []string{"Comedy"},
		Directors: []*catalogv1.DirectorRef{{Id: "d_new", Name: "Renamed Director 1"}}, Popularity: proto.Float64(12)}
	if err := x.Apply(t.Context(), index.Changes{Upserts: []*catalogv1.Movie{m}, Checkpoint: "cp-2"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"quixotic zebra", "zebra", "Renamed Director 1", "renamed director"} {
		res := search(t, x, query.Input{Q: q})
		if len(res.Hits) == 0 || res.Hits[0].Movie.GetId() != "m_new" {
			t.Errorf("q=%q: %q", q, titles(res))
		}
	}
	res := search(t, x, query.Input{Filter: `directors.name:"renamed director"`})
	if res.Total != 1 {
		t.Errorf("filter on the new director: %d results", res.Total)
	}
	if cp, _ := x.Checkpoint(t.Context()); cp != "cp-2" {
		t.Errorf("checkpoint %q, want cp-2", cp)
	}
	if err := x.Apply(t.Context(), index.Changes{Deletes: []string{"m_new"}, Checkpoint: "cp-3"}); err != nil {
		t.Fatal(err)
	}
	if res := search(t, x, query.Input{Q: "quixotic zebra"}); len(res.Hits) > 0 && res.Hits[0].Movie.GetId() == "m_new" {
		t.Error("deleted movie still found")
	}
	if res := search(t, x, query.Input{Filter: `title:"quixotic zebra"`}); res.Total != 0 {
		t.Error("deleted movie still in discovery")
	}
}

// marker is a word no other marker is within two edits of.
func marker(i, b int) string {
	sum := sha256.Sum256([]byte(fmt.Sprint(i, "/", b)))
	return "m" + hex.EncodeToString(sum[:8])
}

// TestTextSearchAcrossSegments renames movies in many small batches (one
// Bleve segment each, merged in the background) and checks that every text
// hit still maps to the right movie.
func TestTextSearchAcrossSegments(t *testing.T) {
	x, movies := openFixtures(t, 2)
	for b := 0; b < 12; b++ {
		var ups []*catalogv1.Movie
		for i := b; i < len(movies); i += 40 {
			m := proto.Clone(movies[i]).(*catalogv1.Movie)
			m.Title = marker(i, b) + " renamed"
			ups = append(ups, m)
		}
		if err := x.Apply(t.Context(), index.Changes{Upserts: ups, Checkpoint: fmt.Sprintf("cp-%d", b)}); err != nil {
			t.Fatal(err)
		}
	}
	for b := 0; b < 12; b++ {
		for i := b; i < len(movies); i += 40 {
			q := marker(i, b)
			res := search(t, x, query.Input{Q: q, PageSize: 1})
			if len(res.Hits) != 1 || res.Hits[0].Movie.GetId() != movies[i].GetId() || res.Total != 1 {
				t.Fatalf("q=%q: total %d, hits %q; want only %s", q, res.Total, titles(res), movies[i].GetId())
			}
		}
	}
	// Every fixture movie is still found exactly once by discovery, and the
	// running facet counts of the unfiltered case equal a row-by-row count.
	all := search(t, x, query.Input{PageSize: 1})
	if all.Total != int64(len(movies)) {
		t.Fatalf("discovery total %d, want %d", all.Total, len(movies))
	}
	counted := search(t, x, query.Input{PageSize: 1, Filter: `NOT title = "no such title"`})
	if !slices.Equal(all.Genres, counted.Genres) || !slices.Equal(all.Decades, counted.Decades) {
		t.Fatalf("running facets %v %v, counted %v %v", all.Genres, all.Decades, counted.Genres, counted.Decades)
	}
}

// TestTinyCatalogues builds indexes of no movie and of one movie over two
// partitions, so at least one partition gets no document.
func TestTinyCatalogues(t *testing.T) {
	movies, err := fixtures.Movies()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1} {
		x := testindex.Of(t, 2, movies[:n])
		if got := x.Count(); got != int64(n) {
			t.Fatalf("%d movies: Count() = %d", n, got)
		}
		if res := search(t, x, query.Input{Q: "anything"}); res.Total > int64(n) {
			t.Fatalf("%d movies: %d results", n, res.Total)
		}
		m := &catalogv1.Movie{Id: "m_added", Title: "Added Later"}
		if err := x.Apply(t.Context(), index.Changes{Upserts: []*catalogv1.Movie{m}, Checkpoint: "cp"}); err != nil {
			t.Fatal(err)
		}
		if res := search(t, x, query.Input{Q: "added later"}); len(res.Hits) == 0 || res.Hits[0].Movie.GetId() != "m_added" {
			t.Fatalf("%d movies: a movie added afterwards is not found: %q", n, titles(res))
		}
	}
}
