package fakebackend

import (
	"context"
	"strings"

	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
)

// Search is a fake SearchService that matches titles by substring over the
// fake catalog's movies.
type Search struct {
	searchv1.UnimplementedSearchServiceServer
	Recorder
	Catalog *Catalog
}

// SearchMovies returns the movies whose title contains q.
func (s *Search) SearchMovies(ctx context.Context, in *searchv1.SearchMoviesRequest) (*searchv1.SearchMoviesResponse, error) {
	s.record(ctx, "SearchMovies")
	s.Catalog.mu.Lock()
	defer s.Catalog.mu.Unlock()
	out := &searchv1.SearchMoviesResponse{Facets: &searchv1.Facets{}}
	for _, id := range s.Catalog.order {
		m := s.Catalog.movies[id]
		if strings.Contains(strings.ToLower(m.GetTitle()), strings.ToLower(in.GetQ())) {
			out.Results = append(out.Results, &searchv1.SearchResult{Movie: m, Score: 1})
		}
	}
	out.TotalSize = int64(len(out.Results))
	return out, nil
}

// SuggestTitles completes a title prefix.
func (s *Search) SuggestTitles(ctx context.Context, in *searchv1.SuggestTitlesRequest) (*searchv1.SuggestTitlesResponse, error) {
	s.record(ctx, "SuggestTitles")
	s.Catalog.mu.Lock()
	defer s.Catalog.mu.Unlock()
	out := &searchv1.SuggestTitlesResponse{}
	for _, id := range s.Catalog.order {
		m := s.Catalog.movies[id]
		if strings.HasPrefix(strings.ToLower(m.GetTitle()), strings.ToLower(in.GetPrefix())) {
			out.Suggestions = append(out.Suggestions, &searchv1.Suggestion{Id: m.GetId(), Title: m.GetTitle(), Year: m.Year})
		}
	}
	return out, nil
}
