// Package catalogfake is an in-memory CatalogService for testing the importer
// over real gRPC until, and besides, the real catalog: it validates creates as
// API.md says, honours request ids (a repeated request id answers with the
// movie it created first, or ALREADY_EXISTS), and can be told to fail calls
// to exercise retries. It implements BatchCreateMovies, CreateMovie and
// GetMovie; it is a test double, not a store.
package catalogfake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
)

// DuplicateMode says how a create whose request id was seen is answered.
type DuplicateMode int

const (
	// ReturnExisting answers with the movie the first request created
	// (AIP-155).
	ReturnExisting DuplicateMode = iota
	// AlreadyExists fails the batch with ALREADY_EXISTS and a field
	// violation "requests[i].request_id" per duplicate.
	AlreadyExists
	// AlreadyExistsBare fails the batch with ALREADY_EXISTS and no details,
	// so the client cannot tell which request it was about.
	AlreadyExistsBare
)

// Server is the fake. Its zero value is not usable; call New.
type Server struct {
	catalogv1.UnimplementedCatalogServiceServer

	// Token, when set, is the bearer token every call must carry.
	Token string
	// Duplicates selects how duplicates are answered.
	Duplicates DuplicateMode

	mu        sync.Mutex
	movies    map[string]*catalogv1.Movie
	byRequest map[string]string
	failures  []codes.Code
	calls     int
	seq       int
}

// New returns an empty fake catalog.
func New() *Server {
	return &Server{movies: make(map[string]*catalogv1.Movie), byRequest: make(map[string]string)}
}

// Start serves s on a loopback port until ctx ends and returns its address.
func (s *Server) Start(ctx context.Context) (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listening: %w", err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(s.intercept))
	catalogv1.RegisterCatalogServiceServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	return lis.Addr().String(), nil
}

// FailNext makes the next calls fail with the given codes, one each.
func (s *Server) FailNext(cs ...codes.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, cs...)
}

// Calls returns the number of calls received, failed ones included.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Len returns the number of movies.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.movies)
}

// Movies returns copies of every movie, ordered by title then id.
func (s *Server) Movies() []*catalogv1.Movie {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*catalogv1.Movie, 0, len(s.movies))
	for _, m := range s.movies {
		out = append(out, proto.CloneOf(m))
	}
	slices.SortFunc(out, func(a, b *catalogv1.Movie) int {
		if c := strings.Compare(a.GetTitle(), b.GetTitle()); c != 0 {
			return c
		}
		return strings.Compare(a.GetId(), b.GetId())
	})
	return out
}

func (s *Server) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	s.mu.Lock()
	s.calls++
	var fail codes.Code
	if len(s.failures) > 0 {
		fail = s.failures[0]
		s.failures = s.failures[1:]
	}
	s.mu.Unlock()
	if fail != codes.OK {
		return nil, status.Error(fail, "injected failure")
	}
	if s.Token != "" {
		md, _ := metadata.FromIncomingContext(ctx)
		if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer "+s.Token {
			return nil, status.Error(codes.Unauthenticated, "missing or invalid bearer token")
		}
	}
	return handler(ctx, req)
}

// GetMovie returns a movie by id.
func (s *Server) GetMovie(_ context.Context, req *catalogv1.GetMovieRequest) (*catalogv1.Movie, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.movies[req.GetId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "movie %q not found", req.GetId())
	}
	return proto.CloneOf(m), nil
}

// CreateMovie creates one movie.
func (s *Server) CreateMovie(ctx context.Context, req *catalogv1.CreateMovieRequest) (*catalogv1.Movie, error) {
	if vs := validate("", req); len(vs) > 0 {
		return nil, invalid(vs)
	}
	resp, err := s.create([]*catalogv1.CreateMovieRequest{req}, "")
	if err != nil {
		return nil, err
	}
	return resp[0], nil
}

// BatchCreateMovies validates the whole batch, then creates its movies.
func (s *Server) BatchCreateMovies(_ context.Context, req *catalogv1.BatchCreateMoviesRequest) (*catalogv1.BatchCreateMoviesResponse, error) {
	var vs []*errdetails.BadRequest_FieldViolation
	switch n := len(req.GetRequests()); {
	case n == 0:
		vs = append(vs, violation("requests", "must not be empty"))
	case n > 100:
		vs = append(vs, violation("requests", "at most 100 movies per batch"))
	}
	for i, r := range req.GetRequests() {
		vs = append(vs, validate(fmt.Sprintf("requests[%d].", i), r)...)
	}
	if len(vs) > 0 {
		return nil, invalid(vs)
	}
	movies, err := s.create(req.GetRequests(), "requests")
	if err != nil {
		return nil, err
	}
	return &catalogv1.BatchCreateMoviesResponse{Movies: movies}, nil
}

func (s *Server) create(reqs []*catalogv1.CreateMovieRequest, field string) ([]*catalogv1.Movie, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Duplicates != ReturnExisting {
		var vs []*errdetails.BadRequest_FieldViolation
		for i, r := range reqs {
			if _, dup := s.byRequest[r.GetRequestId()]; dup && r.GetRequestId() != "" {
				path := "request_id"
				if field != "" {
					path = fmt.Sprintf("%s[%d].request_id", field, i)
				}
				vs = append(vs, violation(path, "a movie was already created with this request id"))
			}
		}
		if len(vs) > 0 {
			st := status.New(codes.AlreadyExists, "movie already exists")
			if s.Duplicates == AlreadyExists {
				st, _ = st.WithDetails(&errdetails.BadRequest{FieldViolations: vs})
			}
			return nil, st.Err()
		}
	}
	now := timestamppb.Now()
	out := make([]*catalogv1.Movie, len(reqs))
	for i, r := range reqs {
		if id, dup := s.byRequest[r.GetRequestId()]; dup && r.GetRequestId() != "" {
			out[i] = proto.CloneOf(s.movies[id])
			continue
		}
		m := proto.CloneOf(r.GetMovie())
		m.Id = s.idFor(r.GetRequestId())
		m.Title = strings.TrimSpace(m.GetTitle())
		for j, g := range m.Genres {
			m.Genres[j] = strings.TrimSpace(g)
		}
		m.CreateTime, m.UpdateTime = now, now
		etag := `"1"`
		m.Etag = &etag
		s.movies[m.Id] = m
		if r.GetRequestId() != "" {
			s.byRequest[r.GetRequestId()] = m.Id
		}
		out[i] = proto.CloneOf(m)
	}
	return out, nil
}

// idFor derives the id from the request id, as the catalog does, so that
// the id does not depend on which replica or attempt created the movie.
func (s *Server) idFor(requestID string) string {
	if requestID == "" {
		s.seq++
		requestID = fmt.Sprintf("anonymous-%d", s.seq)
	}
	sum := sha256.Sum256([]byte(requestID))
	return "m_" + hex.EncodeToString(sum[:13])
}

// validate applies API.md's rules to one create.
func validate(prefix string, r *catalogv1.CreateMovieRequest) []*errdetails.BadRequest_FieldViolation {
	var vs []*errdetails.BadRequest_FieldViolation
	add := func(field, desc string) { vs = append(vs, violation(prefix+field, desc)) }
	if len(r.GetRequestId()) > 100 {
		add("request_id", "at most 100 characters")
	}
	m := r.GetMovie()
	if m == nil {
		add("movie", "required")
		return vs
	}
	title := strings.TrimSpace(m.GetTitle())
	switch n := utf8.RuneCountInString(title); {
	case n == 0:
		add("movie.title", "required")
	case n > 500:
		add("movie.title", "at most 500 characters")
	}
	maxYear := int32(time.Now().Year() + 10)
	if m.Year != nil && (m.GetYear() < 1870 || m.GetYear() > maxYear) {
		add("movie.year", fmt.Sprintf("must be between 1870 and %d", maxYear))
	}
	if m.ImdbScore != nil && (m.GetImdbScore() < 0 || m.GetImdbScore() > 10) {
		add("movie.imdb_score", "must be between 0 and 10")
	}
	if m.Popularity != nil && (m.GetPopularity() < 0 || m.GetPopularity() > 100) {
		add("movie.popularity", "must be between 0 and 100")
	}
	if len(m.GetGenres()) > 20 {
		add("movie.genres", "at most 20 genres")
	}
	if len(m.GetDirectors()) > 50 {
		add("movie.directors", "at most 50 directors")
	}
	for i, d := range m.GetDirectors() {
		if strings.TrimSpace(d.GetName()) == "" && d.GetId() == "" {
			add(fmt.Sprintf("movie.directors[%d]", i), "give a name or an id")
		}
	}
	if len(m.GetCast()) > 200 {
		add("movie.cast", "at most 200 entries")
	}
	return vs
}

func violation(field, desc string) *errdetails.BadRequest_FieldViolation {
	return &errdetails.BadRequest_FieldViolation{Field: field, Description: desc}
}

func invalid(vs []*errdetails.BadRequest_FieldViolation) error {
	st := status.New(codes.InvalidArgument, "invalid movie")
	st, err := st.WithDetails(
		&errdetails.ErrorInfo{Reason: "INVALID_ARGUMENT", Domain: "marquee.dev"},
		&errdetails.BadRequest{FieldViolations: vs},
	)
	if err != nil {
		return status.Error(codes.Internal, "building the error")
	}
	return st.Err()
}
