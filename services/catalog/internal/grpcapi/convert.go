package grpcapi

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/catalog/internal/feed"
	"github.com/marquee-dev/marquee/services/catalog/internal/movie"
)

func movieToProto(m *movie.Movie) *catalogv1.Movie {
	p := &catalogv1.Movie{
		Id: m.ID, Title: m.Title, OriginalTitle: m.OriginalTitle, Year: m.Year, RuntimeMinutes: m.RuntimeMinutes,
		Genres: m.Genres, Cast: m.Cast, ImdbScore: m.IMDbScore, Votes: m.Votes, Popularity: m.Popularity,
		CreateTime: timestamppb.New(m.CreateTime), UpdateTime: timestamppb.New(m.UpdateTime),
	}
	etag := m.ETag()
	p.Etag = &etag
	for _, d := range m.Directors {
		p.Directors = append(p.Directors, &catalogv1.DirectorRef{Id: d.ID, Name: d.Name})
	}
	return p
}

// movieFromProto copies the writable fields; output-only ones are ignored.
func movieFromProto(p *catalogv1.Movie) *movie.Movie {
	if p == nil {
		return nil
	}
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

// populatedPaths lists the writable fields p sets, the AIP-134 meaning of an
// update without a mask.
func populatedPaths(p *catalogv1.Movie) []string {
	var out []string
	add := func(ok bool, path string) {
		if ok {
			out = append(out, path)
		}
	}
	add(p.GetTitle() != "", "title")
	add(p.GetOriginalTitle() != "", "original_title")
	add(p.Year != nil, "year")
	add(p.RuntimeMinutes != nil, "runtime_minutes")
	add(len(p.GetGenres()) > 0, "genres")
	add(len(p.GetDirectors()) > 0, "directors")
	add(len(p.GetCast()) > 0, "cast")
	add(p.ImdbScore != nil, "imdb_score")
	add(p.Votes != nil, "votes")
	add(p.Popularity != nil, "popularity")
	return out
}

func directorToProto(d *movie.Director) *catalogv1.Director {
	etag := d.ETag()
	return &catalogv1.Director{
		Id: d.ID, Name: d.Name, MovieCount: d.MovieCount, Etag: &etag,
		CreateTime: timestamppb.New(d.CreateTime), UpdateTime: timestamppb.New(d.UpdateTime),
	}
}

func changeToProto(c feed.Change) *catalogv1.MovieChange {
	kind := catalogv1.ChangeKind_CHANGE_KIND_UPSERTED
	if c.Deleted {
		kind = catalogv1.ChangeKind_CHANGE_KIND_DELETED
	}
	return &catalogv1.MovieChange{Id: c.ID, Kind: kind, UpdateTime: timestamppb.New(c.UpdateTime), Etag: movie.FormatETag(c.Revision)}
}

func changesToProto(cs []feed.Change) []*catalogv1.MovieChange {
	out := make([]*catalogv1.MovieChange, len(cs))
	for i, c := range cs {
		out[i] = changeToProto(c)
	}
	return out
}
