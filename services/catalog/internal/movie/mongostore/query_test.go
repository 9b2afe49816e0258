package mongostore_test

import (
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie/mongostore"
)

// TestMovieFilter pins the exact MongoDB query of planned queries: user
// values only ever appear as typed values, never as operators or field
// names.
func TestMovieFilter(t *testing.T) {
	p, err := movie.NewPlanner()
	if err != nil {
		t.Fatal(err)
	}
	live := bson.E{Key: "delete_time", Value: nil}
	ts := time.UnixMilli(1_700_000_000_000).UTC()
	tests := []struct {
		filter, order string
		after         *movie.Cursor
		want          bson.D
		sort          bson.D
	}{
		{filter: "", order: "", want: bson.D{live}, sort: bson.D{{Key: "_id", Value: 1}}},
		{filter: `genres:"drama"`, order: "imdbScore desc",
			want: bson.D{live, {Key: "genres", Value: "Drama"}},
			sort: bson.D{{Key: "imdb_score", Value: -1}, {Key: "_id", Value: -1}}},
		{filter: `{"$gt": ""}`, order: "", want: nil}, // refused by the parser, never a query
		{filter: `title = "$where*"`, order: "title",
			want: bson.D{live, {Key: "title_lower", Value: bson.D{{Key: "$gte", Value: "$where"}, {Key: "$lt", Value: "$where\U0010FFFF"}}}},
			sort: bson.D{{Key: "title_lower", Value: 1}, {Key: "_id", Value: 1}}},
		{filter: `directors.name = "{\"$ne\": 1}"`, order: "",
			want: bson.D{live, {Key: "directors.name", Value: `{"$ne": 1}`}}, sort: bson.D{{Key: "_id", Value: 1}}},
		{filter: `imdbScore >= 8 AND imdbScore < 9`, order: "imdbScore desc",
			after: &movie.Cursor{Value: movie.Value{Kind: movie.KindFloat, Flt: 8.5}, ID: "m_5"},
			want: bson.D{live,
				{Key: "imdb_score", Value: bson.D{{Key: "$gte", Value: 8.0}, {Key: "$lt", Value: 9.0}}},
				{Key: "$or", Value: bson.A{
					bson.D{{Key: "imdb_score", Value: bson.D{{Key: "$lt", Value: 8.5}}}},
					bson.D{{Key: "imdb_score", Value: 8.5}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: "m_5"}}}},
					bson.D{{Key: "imdb_score", Value: nil}},
				}}},
			sort: bson.D{{Key: "imdb_score", Value: -1}, {Key: "_id", Value: -1}}},
		{filter: "", order: "imdbScore",
			after: &movie.Cursor{Value: movie.Value{}, ID: "m_5"},
			want: bson.D{live, {Key: "$or", Value: bson.A{
				bson.D{{Key: "imdb_score", Value: nil}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: "m_5"}}}},
				bson.D{{Key: "imdb_score", Value: bson.D{{Key: "$ne", Value: nil}}}},
			}}},
			sort: bson.D{{Key: "imdb_score", Value: 1}, {Key: "_id", Value: 1}}},
		{filter: `year = 1999`, order: "id desc", after: &movie.Cursor{Value: movie.Value{Kind: movie.KindString, Str: "m_5"}, ID: "m_5"},
			want: bson.D{live, {Key: "year", Value: int64(1999)}, {Key: "_id", Value: bson.D{{Key: "$lt", Value: "m_5"}}}},
			sort: bson.D{{Key: "_id", Value: -1}}},
		{filter: "", order: "updateTime", after: &movie.Cursor{Value: movie.Value{Kind: movie.KindTime, Time: ts}, ID: "m_1"},
			want: bson.D{live, {Key: "$or", Value: bson.A{
				bson.D{{Key: "update_time", Value: bson.D{{Key: "$gt", Value: ts}}}},
				bson.D{{Key: "update_time", Value: ts}, {Key: "_id", Value: bson.D{{Key: "$gt", Value: "m_1"}}}},
			}}},
			sort: bson.D{{Key: "update_time", Value: 1}, {Key: "_id", Value: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.filter+"|"+tt.order, func(t *testing.T) {
			q, err := p.Plan(tt.filter, tt.order)
			if tt.want == nil {
				if err == nil {
					t.Fatalf("planned %s", q.Key())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			q.After = tt.after
			if got, want := fmt.Sprint(mongostore.MovieFilter(q)), fmt.Sprint(tt.want); got != want {
				t.Errorf("filter\n got %s\nwant %s", got, want)
			}
			if got, want := fmt.Sprint(mongostore.MovieSort(q)), fmt.Sprint(tt.sort); got != want {
				t.Errorf("sort\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestDirectorFilterEscapes(t *testing.T) {
	got := fmt.Sprint(mongostore.DirectorFilter(&movie.DirectorQuery{NameContains: "a.*(b"}))
	want := fmt.Sprint(bson.D{{Key: "name_lower", Value: bson.D{{Key: "$regex", Value: `a\.\*\(b`}}}})
	if got != want {
		t.Fatalf("got %s want %s", got, want)
	}
}
