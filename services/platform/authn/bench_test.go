package authn_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/marquee-dev/marquee/services/platform/authn"
)

// BenchmarkVerifyToken measures a full local check of an access token: parsing,
// the Ed25519 signature and the claims, with the verified-token cache off.
func BenchmarkVerifyToken(b *testing.B) {
	f := newFakeAuth()
	priv := f.addKey(b, "k1")
	c := newClock()
	conn := f.serve(b, baseConfig(c))
	v := authn.NewVerifier(conn, nil, authn.VerifierConfig{Issuer: issuer, Audience: audience, TokenCacheSize: -1})
	tok := signToken(b, priv, "k1", jwt.SigningMethodEdDSA, claims("u_1", authn.RoleUser, time.Now(), time.Hour))
	ctx := b.Context()
	if _, err := v.VerifyToken(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := v.VerifyToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyTokenCached measures a token seen before, as when a client
// makes several calls with one token.
func BenchmarkVerifyTokenCached(b *testing.B) {
	f := newFakeAuth()
	priv := f.addKey(b, "k1")
	c := newClock()
	conn := f.serve(b, baseConfig(c))
	v := authn.NewVerifier(conn, nil, authn.VerifierConfig{Issuer: issuer, Audience: audience})
	tok := signToken(b, priv, "k1", jwt.SigningMethodEdDSA, claims("u_1", authn.RoleUser, time.Now(), time.Hour))
	ctx := b.Context()
	if _, err := v.VerifyToken(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := v.VerifyToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveAPIKeyWarm measures an API key whose owner is in the cache.
func BenchmarkResolveAPIKeyWarm(b *testing.B) {
	f := newFakeAuth()
	f.addKey(b, "k1")
	c := newClock()
	conn := f.serve(b, baseConfig(c))
	ts := authn.NewTokenSource(conn, "svc", "s3cret-s3cret")
	v := authn.NewVerifier(conn, ts, authn.VerifierConfig{Issuer: issuer, Audience: audience})
	key := authn.APIKeyPrefix + "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstu"
	f.setAPIKey(key, &authn.Principal{Subject: "u_7", Role: authn.RoleUser, APIKeyID: "k_1"})
	ctx := b.Context()
	if _, err := v.ResolveAPIKey(ctx, key); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := v.ResolveAPIKey(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}

// reportCPU reports the process CPU time per operation and its inverse,
// operations per CPU-second: on a shared machine wall-clock ns/op also counts
// time spent waiting for a core, CPU time does not.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		used := cpuTime() - start
		if b.N == 0 || used <= 0 {
			return
		}
		per := float64(used) / float64(b.N)
		b.ReportMetric(per, "cpu-ns/op")
		b.ReportMetric(float64(time.Second)/per, "ops/cpu-s")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEd25519Verify is the baseline for BenchmarkVerifyToken: the
// signature check alone, the floor under any JWT library on this CPU.
func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte("eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1XzEifQ")
	sig := ed25519.Sign(priv, msg)
	b.ResetTimer()
	defer reportCPU(b)()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("signature does not verify")
		}
	}
}
