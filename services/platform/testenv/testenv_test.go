package testenv_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/marquee-dev/marquee/services/platform/testenv"
)

func TestMain(m *testing.M) { testenv.RunMain(m) }

func TestMongoGivesEachTestItsOwnDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var names []string
	for _, name := range []string{"First Test", "second/test"} {
		t.Run(name, func(t *testing.T) {
			c := testenv.Mongo(t)
			names = append(names, c.DB.Name())
			if _, err := c.DB.Collection("items").InsertOne(ctx, bson.D{{Key: "owner", Value: name}}); err != nil {
				t.Fatal(err)
			}
			n, err := c.DB.Collection("items").CountDocuments(ctx, bson.D{})
			if err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("database %s has %d documents, want only this test's 1", c.DB.Name(), n)
			}
		})
	}
	if len(names) != 2 {
		t.Fatalf("subtests ran %d times", len(names))
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "testmongogiveseachtestitsowndatabase_") {
			t.Errorf("database name %q does not start with the sanitised test name", n)
		}
	}

	// Both databases were dropped when their tests ended.
	client, err := mongo.Connect(options.Client().ApplyURI(testenv.MongoURI(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Disconnect(ctx)
	dbs, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if slices.Contains(dbs, n) {
			t.Errorf("database %s still exists after its test", n)
		}
	}
}

func TestDatabaseName(t *testing.T) {
	valid := regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
	tests := []struct {
		in         string
		wantPrefix string
	}{
		{"TestX", "testx_"},
		{"TestStore/Get/not found", "teststore_get_not_found_"},
		{"Test" + strings.Repeat("Long", 30), "testlong"},
		{"///", "test_"},
	}
	for _, tt := range tests {
		a, b := testenv.DatabaseName(tt.in), testenv.DatabaseName(tt.in)
		if !valid.MatchString(a) {
			t.Errorf("DatabaseName(%q) = %q (%d chars), want [a-z0-9_]{1,63}", tt.in, a, len(a))
		}
		if !strings.HasPrefix(a, tt.wantPrefix) {
			t.Errorf("DatabaseName(%q) = %q, want prefix %q", tt.in, a, tt.wantPrefix)
		}
		if a == b {
			t.Errorf("DatabaseName(%q) twice gave %q: no random suffix", tt.in, a)
		}
	}
}

func TestRedis(t *testing.T) {
	var addr string
	t.Run("running", func(t *testing.T) {
		addr = testenv.Redis(t)
		if got := redisCommand(t, addr, "SET", "k", "v"); got != "+OK" {
			t.Errorf("SET = %q", got)
		}
		if got := redisCommand(t, addr, "CONFIG", "GET", "save"); !strings.Contains(got, "*2") {
			t.Errorf("CONFIG GET save = %q", got)
		}
	})
	if addr == "" {
		return // skipped: no redis-server outside CI
	}
	// Stopped at the end of its test.
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("redis on %s still accepting connections after its test", addr)
	}
}

// redisCommand sends one command and returns the first reply line.
func redisCommand(t *testing.T, addr string, args ...string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

// fakeTB records how RequireBinary ends a test instead of ending this one.
type fakeTB struct {
	testing.TB
	failed, skipped bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }
func (f *fakeTB) Skipf(string, ...any)  { f.skipped = true }

func TestRequireBinary(t *testing.T) {
	if got := testenv.RequireBinary(t, "sh"); got == "" {
		t.Error("RequireBinary(sh) returned no path")
	}

	const missing = "marquee-no-such-binary"
	t.Setenv("CI", "true")
	ci := &fakeTB{TB: t}
	testenv.RequireBinary(ci, missing)
	if !ci.failed || ci.skipped {
		t.Errorf("under CI=true: failed=%v skipped=%v, want a failure", ci.failed, ci.skipped)
	}

	t.Setenv("CI", "")
	local := &fakeTB{TB: t}
	testenv.RequireBinary(local, missing)
	if local.failed || !local.skipped {
		t.Errorf("outside CI: failed=%v skipped=%v, want a skip", local.failed, local.skipped)
	}
}

func TestFreeAddr(t *testing.T) {
	addr := testenv.FreeAddr(t)
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("FreeAddr gave %s, which cannot be bound: %v", addr, err)
	}
	lis.Close()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("FreeAddr = %s, want loopback", addr)
	}
}
