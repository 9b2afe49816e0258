package devstack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/services/platform/grpcclient"
	"github.com/marquee-dev/marquee/tools/internal/importer"
	"github.com/marquee-dev/marquee/tools/internal/moviedata"
)

// seed loads the seed catalogue when the catalog is empty. Imports are
// idempotent (ids derive from each record's natural key), so a start that
// was interrupted half-way simply completes on the next one.
func seed(ctx context.Context, o Options, a Addrs, c configs, s *secrets, logger *slog.Logger) error {
	if o.SeedFile == "" {
		return nil
	}
	conn, err := grpcclient.Dial("passthrough:///"+a.Catalog, nil)
	if err != nil {
		return fmt.Errorf("dialing catalog: %w", err)
	}
	defer conn.Close()
	catalog := catalogv1.NewCatalogServiceClient(conn)
	page, err := catalog.ListMovies(ctx, &catalogv1.ListMoviesRequest{PageSize: 1})
	if err != nil {
		return fmt.Errorf("checking for movies: %w", err)
	}
	if len(page.GetMovies()) > 0 {
		return nil
	}

	token, err := AdminToken(ctx, a.Auth, c.auth.AdminEmail, c.auth.AdminPassword)
	if err != nil {
		return err
	}
	wconn, err := importer.Dial(a.Catalog, importer.DialConfig{Token: token})
	if err != nil {
		return fmt.Errorf("dialing catalog: %w", err)
	}
	defer wconn.Close()

	// Small batches keep each call well inside the catalog's write deadline
	// on a busy machine; the import is idempotent, so a failed attempt is
	// simply run again and skips what it already wrote.
	client := catalogv1.NewCatalogServiceClient(wconn)
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		sum, err := importFile(ctx, client, o.SeedFile)
		if err == nil {
			logger.InfoContext(ctx, "seeded the catalogue", slog.String("file", o.SeedFile),
				slog.Int64("inserted", sum.Inserted), slog.Int64("skipped", sum.Skipped), slog.Int64("rejected", sum.Rejected))
			return nil
		}
		lastErr = err
		logger.WarnContext(ctx, "seeding the catalogue failed; trying again", slog.Int("attempt", attempt), slog.Any("error", err))
	}
	return lastErr
}

func importFile(ctx context.Context, client catalogv1.CatalogServiceClient, path string) (importer.Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return importer.Summary{}, fmt.Errorf("opening seed: %w", err)
	}
	defer f.Close()
	r, err := moviedata.NewReader(moviedata.FormatIMDB, f, moviedata.Options{})
	if err != nil {
		return importer.Summary{}, fmt.Errorf("reading seed: %w", err)
	}
	sum, err := importer.New(client, importer.Config{BatchSize: 25, Workers: 2}).Run(ctx, r)
	if err != nil {
		return sum, fmt.Errorf("importing %s: %w", filepath.Base(path), err)
	}
	if sum.Rejected > 0 {
		return sum, fmt.Errorf("importing %s: the catalog rejected %d records", filepath.Base(path), sum.Rejected)
	}
	return sum, nil
}

// AdminToken signs the administrator in with the password grant and returns
// an access token.
func AdminToken(ctx context.Context, authAddr, email, password string) (string, error) {
	conn, err := grpcclient.Dial("passthrough:///"+authAddr, nil)
	if err != nil {
		return "", fmt.Errorf("dialing auth: %w", err)
	}
	defer conn.Close()
	resp, err := authv1.NewAuthServiceClient(conn).CreateToken(ctx, &authv1.CreateTokenRequest{
		GrantType: "password", Username: email, Password: password,
	})
	if err != nil {
		return "", fmt.Errorf("signing in as %s: %w", email, err)
	}
	return resp.GetAccessToken(), nil
}

// DevAdminToken signs in as the dev stack's administrator using the
// credentials in the data directory (or MARQUEE_ADMIN_EMAIL/PASSWORD), for
// commands such as `marquee import --dev` against a running stack.
func DevAdminToken(ctx context.Context, dataDir, authAddr string) (string, error) {
	s, err := loadSecrets(filepath.Join(dataDir, "dev-secrets.json"))
	if err != nil {
		return "", err
	}
	return AdminToken(ctx, authAddr, envOr("MARQUEE_ADMIN_EMAIL", "admin@marquee.local"), envOr("MARQUEE_ADMIN_PASSWORD", s.AdminPassword))
}
