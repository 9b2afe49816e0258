package movie

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cenkalti/backoff/v5"
	"go.einride.tech/aip/filtering"
)

// GetDirector returns a director with its movie count.
func (s *Service) GetDirector(ctx context.Context, id string) (*Director, error) {
	if err := checkID("id", id, "director", ValidDirectorID); err != nil {
		return nil, err
	}
	d, err := s.store.GetDirector(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.MovieCount, err = s.store.CountMoviesByDirector(ctx, id); err != nil {
		return nil, fmt.Errorf("counting movies of director %s: %w", id, err)
	}
	return d, nil
}

type directorCursor struct {
	N string `json:"n"`
	D string `json:"d"`
}

const purposeListDirectors = "directors"

// ListDirectors lists directors by name then id, filtered by
// `name = "..."` (same normalised name) or `name:"..."` (contains).
func (s *Service) ListDirectors(ctx context.Context, filter string, pageSize int32, pageToken string) ([]*Director, string, error) {
	size, err := PageSize("pageSize", pageSize, DefaultPageSize, MaxPageSize)
	if err != nil {
		return nil, "", err
	}
	q, err := parseDirectorFilter(filter)
	if err != nil {
		return nil, "", err
	}
	binding := fmt.Sprintf("eq=%q contains=%q", q.NameEquals, q.NameContains)
	if pageToken != "" {
		var c directorCursor
		if err := s.tokens.Open(purposeListDirectors, binding, pageToken, &c); err != nil || c.D == "" {
			return nil, "", invalidPageToken("pageToken")
		}
		q.AfterName, q.AfterID = c.N, c.D
	}
	q.Limit = size + 1
	ds, err := s.store.ListDirectors(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("listing directors: %w", err)
	}
	next := ""
	if len(ds) > size {
		ds = ds[:size]
		last := ds[size-1]
		if next, err = s.tokens.Seal(purposeListDirectors, binding, directorCursor{N: NormalizeName(last.Name), D: last.ID}); err != nil {
			return nil, "", fmt.Errorf("encoding page token: %w", err)
		}
	}
	for _, d := range ds {
		if d.MovieCount, err = s.store.CountMoviesByDirector(ctx, d.ID); err != nil {
			return nil, "", fmt.Errorf("counting movies of director %s: %w", d.ID, err)
		}
	}
	return ds, next, nil
}

func parseDirectorFilter(filter string) (*DirectorQuery, error) {
	q := &DirectorQuery{}
	if strings.TrimSpace(filter) == "" {
		return q, nil
	}
	bad := func(desc string) error {
		return &InvalidError{Reason: ReasonInvalidFilter, Message: "invalid filter",
			Violations: []FieldViolation{{Field: "filter", Description: desc}}}
	}
	if len(filter) > maxFilterChars {
		return nil, bad(fmt.Sprintf("must be at most %d characters", maxFilterChars))
	}
	decls, err := filtering.NewDeclarations(filtering.DeclareStandardFunctions(),
		filtering.DeclareIdent("name", filtering.TypeString))
	if err != nil {
		return nil, fmt.Errorf("declaring director filter: %w", err)
	}
	f, err := filtering.ParseFilterString(filter, decls)
	if err != nil {
		return nil, bad(err.Error())
	}
	call := f.CheckedExpr.GetExpr().GetCallExpr()
	if call == nil || len(call.GetArgs()) != 2 || call.GetArgs()[1].GetConstExpr() == nil {
		return nil, bad(`use name = "..." or name:"..."`)
	}
	value := NormalizeName(call.GetArgs()[1].GetConstExpr().GetStringValue())
	switch call.GetFunction() {
	case filtering.FunctionEquals:
		q.NameEquals = value
	case filtering.FunctionHas:
		q.NameContains = value
	default:
		return nil, bad(`use name = "..." or name:"..."`)
	}
	return q, nil
}

// UpdateDirector renames a director; every movie embedding it follows. The
// director is first marked with the pending rename, then each movie is
// rewritten (bumping its revision and update time so the change feed lists
// it), then the mark is cleared. A crash leaves the mark, and
// ResumePendingRenames or the next rename of that director finishes the
// fan-out. Rewriting a movie that already carries the new name is skipped,
// so running it twice changes nothing.
func (s *Service) UpdateDirector(ctx context.Context, id, name, etag string, paths []string) (*Director, error) {
	if err := checkID("director.id", id, "director", ValidDirectorID); err != nil {
		return nil, err
	}
	var v violations
	if len(paths) != 1 || paths[0] != "name" {
		v.add("updateMask", `must be exactly "name"`)
	}
	name = checkDirectorName(&v, "director.name", name)
	if err := v.err(); err != nil {
		return nil, err
	}
	name = strings.Join(strings.Fields(name), " ")
	want, hasETag, err := parseETagField("director.etag", etag)
	if err != nil {
		return nil, err
	}
	// Finish any rename a crash interrupted before starting another.
	if err := s.ResumePendingRenames(ctx); err != nil {
		return nil, err
	}
	var renamed *Director
	err = s.retryConflicts(ctx, func() error {
		for {
			cur, err := s.store.GetDirector(ctx, id)
			if err != nil {
				return err
			}
			if hasETag && cur.Revision != want {
				return ErrETagMismatch
			}
			if cur.PendingRename != nil {
				// Another rename's fan-out is unfinished: finish it first.
				// It retries its own writes, so its failure is final here.
				before := cur.Revision
				if err := s.finishRename(ctx, cur); err != nil {
					return backoff.Permanent(err)
				}
				if hasETag {
					// Finishing bumped the revision; the caller's view
					// still holds.
					if cur.Revision == before {
						// Someone else cleared the mark: read what they left.
						if cur, err = s.store.GetDirector(ctx, id); err != nil {
							return err
						}
					}
					want = cur.Revision
				}
				continue
			}
			if cur.Name == name {
				return nil
			}
			next := *cur
			next.Name = name
			next.Revision = cur.Revision + 1
			next.UpdateTime = s.stamp(cur.UpdateTime)
			next.PendingRename = &PendingRename{Name: name, Started: next.UpdateTime}
			err = s.replaceDirector(ctx, &next, cur.Revision)
			if err := casFailure(err, hasETag, fmt.Sprintf("renaming director %s", id)); err != nil {
				return err
			}
			renamed = &next
			return nil
		}
	})
	if errors.Is(err, ErrConflict) {
		return nil, fmt.Errorf("renaming director %s: %w", id, err)
	}
	if err != nil {
		return nil, err
	}
	// The rename is committed; the fan-out runs outside the retries above.
	// If it fails, the mark stays and the next start (or rename) finishes it.
	if renamed != nil {
		if err := s.finishRename(ctx, renamed); err != nil {
			return nil, err
		}
	}
	return s.GetDirector(ctx, id)
}

// ResumePendingRenames finishes every rename a crash interrupted.
func (s *Service) ResumePendingRenames(ctx context.Context) error {
	ds, err := s.store.PendingRenames(ctx)
	if err != nil {
		return fmt.Errorf("finding pending renames: %w", err)
	}
	for _, d := range ds {
		s.logger.InfoContext(ctx, "resuming director rename", "director", d.ID, "name", d.PendingRename.Name)
		if err := s.finishRename(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// finishRename fans d's pending rename out to its movies and clears the
// mark.
func (s *Service) finishRename(ctx context.Context, d *Director) error {
	target := d.PendingRename.Name
	// A movie created concurrently from a stale read of the director may
	// still embed the old name after a pass; later passes catch it.
	for pass := 0; pass < 3; pass++ {
		changed, err := s.fanOutPass(ctx, d.ID, target)
		if err != nil {
			return err
		}
		if changed == 0 {
			break
		}
	}
	err := s.retryConflicts(ctx, func() error {
		cur, err := s.store.GetDirector(ctx, d.ID)
		if err != nil {
			return err
		}
		if cur.PendingRename == nil || cur.PendingRename.Name != target {
			return nil // cleared already, or superseded by a newer rename
		}
		next := *cur
		next.PendingRename = nil
		next.Revision = cur.Revision + 1
		next.UpdateTime = s.stamp(cur.UpdateTime)
		err = s.replaceDirector(ctx, &next, cur.Revision)
		if err != nil {
			return err
		}
		*d = next
		return nil
	})
	if err != nil {
		return fmt.Errorf("clearing the rename mark of director %s: %w", d.ID, err)
	}
	return nil
}

const fanOutPage = 100

func (s *Service) fanOutPass(ctx context.Context, directorID, name string) (int, error) {
	changed := 0
	after := ""
	for {
		ms, err := s.store.MoviesByDirector(ctx, directorID, after, fanOutPage)
		if err != nil {
			return changed, fmt.Errorf("reading movies of director %s: %w", directorID, err)
		}
		for _, m := range ms {
			ok, err := s.modifyMovie(ctx, m, func(m *Movie) bool {
				dirty := false
				for i := range m.Directors {
					if m.Directors[i].ID == directorID && m.Directors[i].Name != name {
						m.Directors[i].Name = name
						dirty = true
					}
				}
				return dirty
			})
			if err != nil {
				return changed, err
			}
			if ok {
				changed++
			}
		}
		if len(ms) < fanOutPage {
			return changed, nil
		}
		after = ms[len(ms)-1].ID
	}
}

// modifyMovie applies change to the current revision of m, re-reading on a
// concurrent write, and reports whether anything was written. change returns
// false when there is nothing to do.
func (s *Service) modifyMovie(ctx context.Context, m *Movie, change func(*Movie) bool) (bool, error) {
	cur := m
	var written *Movie
	err := s.retryConflicts(ctx, func() error {
		if cur == nil {
			var err error
			if cur, err = s.store.GetMovie(ctx, m.ID); err != nil {
				return err
			}
		}
		if cur.Deleted() {
			return nil
		}
		next := cur.Clone()
		if !change(next) {
			return nil
		}
		next.Revision = cur.Revision + 1
		next.UpdateTime = s.stamp(cur.UpdateTime)
		err := s.replaceMovie(ctx, next, cur.Revision)
		if err != nil {
			cur = nil // re-read before the next attempt
			return err
		}
		written = next
		return nil
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("updating movie %s: %w", m.ID, err)
	case written == nil:
		return false, nil
	}
	s.notify(ctx, Written{ID: written.ID, Revision: written.Revision})
	return true, nil
}
