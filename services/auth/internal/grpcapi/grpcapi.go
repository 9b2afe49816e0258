// Package grpcapi serves marquee.auth.v1.AuthService: it maps requests to the
// identity, token and apikey packages and back, declares each RPC's
// authorization with authn.Require, and is the one place where their errors
// become gRPC status codes with an ErrorInfo reason.
package grpcapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/auth/v1"
	"github.com/marquee-dev/marquee/services/auth/internal/apikey"
	"github.com/marquee-dev/marquee/services/auth/internal/identity"
	"github.com/marquee-dev/marquee/services/auth/internal/throttle"
	"github.com/marquee-dev/marquee/services/auth/internal/token"
	"github.com/marquee-dev/marquee/services/platform/apierr"
	"github.com/marquee-dev/marquee/services/platform/authn"
)

// Reasons of the errors this service answers (google.rpc.ErrorInfo).
const (
	ReasonInvalidCredentials   = "INVALID_CREDENTIALS"
	ReasonInvalidGrant         = "INVALID_GRANT"
	ReasonRefreshTokenReused   = "REFRESH_TOKEN_REUSED"
	ReasonInvalidClient        = "INVALID_CLIENT"
	ReasonUnsupportedGrantType = "UNSUPPORTED_GRANT_TYPE"
	ReasonTooManyAttempts      = "TOO_MANY_ATTEMPTS"
	ReasonEmailTaken           = "EMAIL_TAKEN"
	ReasonUserNotFound         = "USER_NOT_FOUND"
	ReasonAPIKeyNotFound       = "API_KEY_NOT_FOUND"
	ReasonTooManyAPIKeys       = "TOO_MANY_API_KEYS"
	ReasonAPIKeyNotAllowed     = "API_KEY_NOT_ALLOWED"
	ReasonCannotModifySelf     = "CANNOT_MODIFY_SELF"
	ReasonInvalidPageToken     = "INVALID_PAGE_TOKEN"
	ReasonAccountInactive      = "ACCOUNT_INACTIVE"
	ReasonInternal             = "INTERNAL"
)

// Grant types of CreateToken.
const (
	GrantPassword          = "password"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Throttles limit attempts; nil limiters limit nothing.
type Throttles struct {
	// LoginAccount counts failed sign-ins per account (email), known or not.
	LoginAccount *throttle.Limiter
	// LoginAddress counts every sign-in and client_credentials attempt per
	// client address.
	LoginAddress *throttle.Limiter
	// SignupAddress counts registrations per client address.
	SignupAddress *throttle.Limiter
}

// Deps are what the server needs.
type Deps struct {
	Users   *identity.Service
	APIKeys *apikey.Service
	Keys    *token.Keys
	Issuer  *token.Issuer
	Refresh *token.Refresher

	AccessTokenTTL  time.Duration
	ServiceTokenTTL time.Duration
	// ServiceClients maps a service's client id to its secret.
	ServiceClients map[string]string
	Throttles      Throttles
	Logger         *slog.Logger
}

// Server implements authv1.AuthServiceServer.
type Server struct {
	authv1.UnimplementedAuthServiceServer
	d       Deps
	clients map[string][sha256.Size]byte
	logger  *slog.Logger
}

var _ authv1.AuthServiceServer = (*Server)(nil)

// New returns a Server.
func New(d Deps) *Server {
	s := &Server{d: d, clients: map[string][sha256.Size]byte{}, logger: d.Logger}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	for id, secret := range d.ServiceClients {
		s.clients[id] = sha256.Sum256([]byte(secret))
	}
	return s
}

// CreateUser registers a user (anyone may; limited per client address).
func (s *Server) CreateUser(ctx context.Context, req *authv1.CreateUserRequest) (*authv1.User, error) {
	if err := authn.Require(ctx, authn.RoleAnonymous); err != nil {
		return nil, err
	}
	if err := allow(s.d.Throttles.SignupAddress, "signup:"+authn.FromContext(ctx).ClientAddr); err != nil {
		return nil, err
	}
	u, err := s.d.Users.Register(ctx, req.GetEmail(), req.GetPassword(), req.GetDisplayName())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	s.logger.InfoContext(ctx, "user registered", "user_id", u.ID)
	return userProto(u), nil
}

// CreateToken issues tokens for the password, refresh_token and
// client_credentials grants (anyone may ask).
func (s *Server) CreateToken(ctx context.Context, req *authv1.CreateTokenRequest) (*authv1.CreateTokenResponse, error) {
	if err := authn.Require(ctx, authn.RoleAnonymous); err != nil {
		return nil, err
	}
	switch req.GetGrantType() {
	case GrantPassword:
		return s.passwordGrant(ctx, req)
	case GrantRefreshToken:
		return s.refreshGrant(ctx, req)
	case GrantClientCredentials:
		return s.clientCredentialsGrant(ctx, req)
	case "":
		return nil, apierr.InvalidArgument("", "grant_type is required", apierr.Field("grant_type", "is required"))
	default:
		return nil, apierr.InvalidArgument(ReasonUnsupportedGrantType, "unsupported grant type",
			apierr.Field("grant_type", "must be password, refresh_token or client_credentials"))
	}
}

func (s *Server) passwordGrant(ctx context.Context, req *authv1.CreateTokenRequest) (*authv1.CreateTokenResponse, error) {
	var v []apierr.FieldViolation
	if req.GetUsername() == "" {
		v = append(v, apierr.Field("username", "is required with the password grant"))
	}
	if req.GetPassword() == "" {
		v = append(v, apierr.Field("password", "is required with the password grant"))
	}
	if len(req.GetUsername()) > identity.MaxEmailLen {
		v = append(v, apierr.Field("username", "is too long"))
	}
	if len(req.GetPassword()) > identity.MaxPasswordLen {
		v = append(v, apierr.Field("password", "is too long"))
	}
	if len(v) > 0 {
		return nil, apierr.InvalidArgument("", "the password grant needs a username and a password", v...)
	}
	if err := allow(s.d.Throttles.LoginAddress, "login:"+authn.FromContext(ctx).ClientAddr); err != nil {
		return nil, err
	}
	account := "account:" + strings.ToLower(strings.TrimSpace(req.GetUsername()))
	if err := check(s.d.Throttles.LoginAccount, account); err != nil {
		return nil, err
	}
	u, err := s.d.Users.Authenticate(ctx, req.GetUsername(), req.GetPassword())
	if errors.Is(err, identity.ErrInvalidCredentials) {
		if s.d.Throttles.LoginAccount != nil {
			s.d.Throttles.LoginAccount.Allow(account)
		}
		return nil, apierr.New(codes.Unauthenticated, ReasonInvalidCredentials, "the email or password is wrong")
	}
	if err != nil {
		return nil, s.status(ctx, err)
	}
	access, _, err := s.d.Issuer.Issue(ctx, u.ID, u.Role, s.d.AccessTokenTTL)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	refresh, err := s.d.Refresh.Start(ctx, u.ID)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return tokenResponse(access, s.d.AccessTokenTTL, refresh), nil
}

func (s *Server) refreshGrant(ctx context.Context, req *authv1.CreateTokenRequest) (*authv1.CreateTokenResponse, error) {
	if req.GetRefreshToken() == "" {
		return nil, apierr.InvalidArgument("", "the refresh_token grant needs a refresh token",
			apierr.Field("refresh_token", "is required with the refresh_token grant"))
	}
	var user identity.User
	_, next, err := s.d.Refresh.Rotate(ctx, req.GetRefreshToken(), func(ctx context.Context, id string) (bool, error) {
		u, err := s.d.Users.GetActive(ctx, id)
		if errors.Is(err, identity.ErrUserNotFound) {
			return false, nil
		}
		user = u
		return err == nil, err
	})
	switch {
	case errors.Is(err, token.ErrRefreshTokenReused):
		s.logger.WarnContext(ctx, "a refresh token was reused; its family is revoked")
		return nil, apierr.New(codes.Unauthenticated, ReasonRefreshTokenReused, "the refresh token was already used; sign in again")
	case errors.Is(err, token.ErrInvalidRefreshToken):
		return nil, apierr.New(codes.Unauthenticated, ReasonInvalidGrant, "the refresh token is not valid")
	case err != nil:
		return nil, s.status(ctx, err)
	}
	access, _, err := s.d.Issuer.Issue(ctx, user.ID, user.Role, s.d.AccessTokenTTL)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return tokenResponse(access, s.d.AccessTokenTTL, next), nil
}

// dummyClientSecret is compared against when the client id is unknown, so
// both failures take the same time.
var dummyClientSecret = sha256.Sum256([]byte("no such client"))

func (s *Server) clientCredentialsGrant(ctx context.Context, req *authv1.CreateTokenRequest) (*authv1.CreateTokenResponse, error) {
	var v []apierr.FieldViolation
	if req.GetClientId() == "" {
		v = append(v, apierr.Field("client_id", "is required with the client_credentials grant"))
	}
	if req.GetClientSecret() == "" {
		v = append(v, apierr.Field("client_secret", "is required with the client_credentials grant"))
	}
	if len(v) > 0 {
		return nil, apierr.InvalidArgument("", "the client_credentials grant needs a client id and secret", v...)
	}
	addrKey := "login:" + authn.FromContext(ctx).ClientAddr
	if err := check(s.d.Throttles.LoginAddress, addrKey); err != nil {
		return nil, err
	}
	want, known := s.clients[req.GetClientId()]
	if !known {
		want = dummyClientSecret
	}
	got := sha256.Sum256([]byte(req.GetClientSecret()))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !known {
		if s.d.Throttles.LoginAddress != nil {
			s.d.Throttles.LoginAddress.Allow(addrKey)
		}
		return nil, apierr.New(codes.Unauthenticated, ReasonInvalidClient, "the client id or secret is wrong")
	}
	access, _, err := s.d.Issuer.Issue(ctx, req.GetClientId(), authn.RoleService, s.d.ServiceTokenTTL)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return tokenResponse(access, s.d.ServiceTokenTTL, ""), nil
}

func tokenResponse(access string, ttl time.Duration, refresh string) *authv1.CreateTokenResponse {
	return &authv1.CreateTokenResponse{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(ttl / time.Second), RefreshToken: refresh,
	}
}

// RevokeToken revokes a refresh token's family (users and admins; an admin
// may revoke anyone's).
func (s *Server) RevokeToken(ctx context.Context, req *authv1.RevokeTokenRequest) (*emptypb.Empty, error) {
	_, p, err := s.caller(ctx, authn.RoleUser, authn.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if req.GetRefreshToken() == "" {
		return nil, apierr.InvalidArgument("", "refresh_token is required", apierr.Field("refresh_token", "is required"))
	}
	if err := s.d.Refresh.Revoke(ctx, req.GetRefreshToken(), p.Subject, p.Role == authn.RoleAdmin); err != nil {
		return nil, s.status(ctx, err)
	}
	return &emptypb.Empty{}, nil
}

// GetCurrentUser returns the caller (users and admins).
func (s *Server) GetCurrentUser(ctx context.Context, _ *authv1.GetCurrentUserRequest) (*authv1.User, error) {
	u, _, err := s.caller(ctx, authn.RoleUser, authn.RoleAdmin)
	if err != nil {
		return nil, err
	}
	return userProto(u), nil
}

// DeleteCurrentUser deletes the caller's account and revokes its keys and
// tokens (users and admins, with a token: an API key cannot delete its owner).
func (s *Server) DeleteCurrentUser(ctx context.Context, _ *authv1.DeleteCurrentUserRequest) (*emptypb.Empty, error) {
	u, p, err := s.caller(ctx, authn.RoleUser, authn.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if p.APIKeyID != "" {
		return nil, apierr.New(codes.PermissionDenied, ReasonAPIKeyNotAllowed, "an account cannot be deleted with an API key; sign in")
	}
	// The user goes first: once it is gone its keys and refresh tokens no
	// longer resolve, even if the clean-up below fails half-way.
	if err := s.d.Users.Delete(ctx, u.ID); err != nil {
		return nil, s.status(ctx, err)
	}
	if err := s.d.APIKeys.DeleteUserKeys(ctx, u.ID); err != nil {
		return nil, s.status(ctx, err)
	}
	if err := s.d.Refresh.RevokeUser(ctx, u.ID); err != nil {
		return nil, s.status(ctx, err)
	}
	s.logger.InfoContext(ctx, "user deleted their account", "user_id", u.ID)
	return &emptypb.Empty{}, nil
}

// UpdateUser changes a user's role, disabled flag or display name (admins).
func (s *Server) UpdateUser(ctx context.Context, req *authv1.UpdateUserRequest) (*authv1.User, error) {
	_, p, err := s.caller(ctx, authn.RoleAdmin)
	if err != nil {
		return nil, err
	}
	in := req.GetUser()
	var v []apierr.FieldViolation
	if in.GetId() == "" {
		v = append(v, apierr.Field("user.id", "is required"))
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		v = append(v, apierr.Field("update_mask", "is required: role, disabled and/or display_name"))
	}
	var upd identity.Update
	for _, path := range paths {
		switch path {
		case "role":
			r := authn.RoleFromProto(in.GetRole())
			if r != authn.RoleUser && r != authn.RoleAdmin {
				v = append(v, apierr.Field("user.role", "must be ROLE_USER or ROLE_ADMIN"))
			}
			upd.Role = &r
		case "disabled":
			d := in.GetDisabled()
			upd.Disabled = &d
		case "display_name":
			n := in.GetDisplayName()
			upd.DisplayName = &n
		default:
			v = append(v, apierr.Field("update_mask", "unknown or read-only path "+strconv.Quote(path)+"; allowed: role, disabled, display_name"))
		}
	}
	if len(v) > 0 {
		return nil, apierr.InvalidArgument("", "invalid update", v...)
	}
	u, err := s.d.Users.Update(ctx, p.Subject, in.GetId(), upd)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	if u.Disabled {
		// Refresh tokens are checked against the user anyway; revoking them
		// means re-enabling the account does not bring old sessions back.
		if err := s.d.Refresh.RevokeUser(ctx, u.ID); err != nil {
			return nil, s.status(ctx, err)
		}
	}
	s.logger.InfoContext(ctx, "user updated by an administrator", "admin_id", p.Subject, "user_id", u.ID, "fields", strings.Join(paths, ","))
	return userProto(u), nil
}

// CreateApiKey creates a key for the caller (users and admins, with a token:
// an API key cannot mint further keys).
func (s *Server) CreateApiKey(ctx context.Context, req *authv1.CreateApiKeyRequest) (*authv1.ApiKey, error) {
	u, p, err := s.caller(ctx, authn.RoleUser, authn.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if p.APIKeyID != "" {
		return nil, apierr.New(codes.PermissionDenied, ReasonAPIKeyNotAllowed, "API keys cannot create API keys; sign in")
	}
	k, secret, err := s.d.APIKeys.Create(ctx, u.ID, req.GetApiKey().GetDisplayName())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	s.logger.InfoContext(ctx, "API key created", "user_id", u.ID, "key_id", k.ID)
	out := keyProto(k)
	out.Key = secret
	return out, nil
}

// ListApiKeys lists the caller's keys without secrets (users and admins).
func (s *Server) ListApiKeys(ctx context.Context, req *authv1.ListApiKeysRequest) (*authv1.ListApiKeysResponse, error) {
	u, _, err := s.caller(ctx, authn.RoleUser, authn.RoleAdmin)
	if err != nil {
		return nil, err
	}
	keys, next, err := s.d.APIKeys.List(ctx, u.ID, int(req.GetPageSize()), req.GetPageToken())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	resp := &authv1.ListApiKeysResponse{NextPageToken: next}
	for _, k := range keys {
		resp.ApiKeys = append(resp.ApiKeys, keyProto(k))
	}
	return resp, nil
}

// DeleteApiKey revokes one of the caller's keys (users and admins).
func (s *Server) DeleteApiKey(ctx context.Context, req *authv1.DeleteApiKeyRequest) (*emptypb.Empty, error) {
	u, _, err := s.caller(ctx, authn.RoleUser, authn.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if err := s.d.APIKeys.Delete(ctx, u.ID, req.GetId()); err != nil {
		return nil, s.status(ctx, err)
	}
	s.logger.InfoContext(ctx, "API key revoked", "user_id", u.ID, "key_id", req.GetId())
	return &emptypb.Empty{}, nil
}

// ResolveApiKey resolves a key to its owner (services only).
func (s *Server) ResolveApiKey(ctx context.Context, req *authv1.ResolveApiKeyRequest) (*authv1.ResolveApiKeyResponse, error) {
	if err := authn.Require(ctx, authn.RoleService); err != nil {
		return nil, err
	}
	if req.GetKey() == "" {
		return nil, apierr.InvalidArgument("", "key is required", apierr.Field("key", "is required"))
	}
	k, p, err := s.d.APIKeys.Resolve(ctx, req.GetKey())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &authv1.ResolveApiKeyResponse{UserId: p.Subject, Role: p.Role.Proto(), KeyId: k.ID}, nil
}

// GetJwks returns the public signing keys (anyone).
func (s *Server) GetJwks(ctx context.Context, _ *authv1.GetJwksRequest) (*authv1.GetJwksResponse, error) {
	if err := authn.Require(ctx, authn.RoleAnonymous); err != nil {
		return nil, err
	}
	keys, err := s.d.Keys.JWKS(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &authv1.GetJwksResponse{Keys: keys}, nil
}

// caller requires one of roles and, for users and admins, loads the account:
// a disabled or deleted account is UNAUTHENTICATED here at once, whatever its
// token says.
func (s *Server) caller(ctx context.Context, roles ...authn.Role) (identity.User, authn.Principal, error) {
	if err := authn.Require(ctx, roles...); err != nil {
		return identity.User{}, authn.Principal{}, err
	}
	p := authn.FromContext(ctx)
	u, err := s.d.Users.GetActive(ctx, p.Subject)
	if errors.Is(err, identity.ErrUserNotFound) {
		return identity.User{}, p, apierr.New(codes.Unauthenticated, ReasonAccountInactive, "the account is disabled or deleted")
	}
	if err != nil {
		return identity.User{}, p, s.status(ctx, err)
	}
	// The stored role wins over the token's, which may be up to a token
	// lifetime old.
	if !slices.Contains(roles, u.Role) {
		return identity.User{}, p, apierr.New(codes.PermissionDenied, authn.ReasonPermissionDenied, "the caller's role may not make this call")
	}
	p.Role = u.Role
	return u, p, nil
}

func allow(l *throttle.Limiter, key string) error {
	if l == nil {
		return nil
	}
	if ok, wait := l.Allow(key); !ok {
		return tooMany(wait)
	}
	return nil
}

func check(l *throttle.Limiter, key string) error {
	if l == nil {
		return nil
	}
	if ok, wait := l.Check(key); !ok {
		return tooMany(wait)
	}
	return nil
}

func tooMany(wait time.Duration) error {
	secs := max(1, int64((wait+time.Second-1)/time.Second))
	return apierr.WithMetadata(codes.ResourceExhausted, ReasonTooManyAttempts, "too many attempts; try again later",
		map[string]string{"retry_after_seconds": strconv.FormatInt(secs, 10)})
}

// status maps a domain error to a gRPC status. Unexpected errors are logged
// and answered INTERNAL without their text.
func (s *Server) status(ctx context.Context, err error) error {
	var inv *identity.InvalidInputError
	var kinv *apikey.InvalidInputError
	switch {
	case errors.As(err, &inv):
		return apierr.InvalidArgument(inv.Reason, inv.Field+" "+inv.Description, apierr.Field(inv.Field, inv.Description))
	case errors.As(err, &kinv):
		return apierr.InvalidArgument("", kinv.Field+" "+kinv.Description, apierr.Field(kinv.Field, kinv.Description))
	case errors.Is(err, identity.ErrEmailTaken):
		return apierr.New(codes.AlreadyExists, ReasonEmailTaken, "a user with this email already exists")
	case errors.Is(err, identity.ErrUserNotFound):
		return apierr.New(codes.NotFound, ReasonUserNotFound, "user not found")
	case errors.Is(err, identity.ErrCannotModifySelf):
		return apierr.New(codes.FailedPrecondition, ReasonCannotModifySelf, err.Error())
	case errors.Is(err, apikey.ErrNotFound):
		return apierr.New(codes.NotFound, ReasonAPIKeyNotFound, "API key not found")
	case errors.Is(err, apikey.ErrTooManyKeys):
		return apierr.New(codes.FailedPrecondition, ReasonTooManyAPIKeys, "the account has too many API keys; revoke some first")
	case errors.Is(err, apikey.ErrInvalidPageToken):
		return apierr.InvalidArgument(ReasonInvalidPageToken, "invalid page token", apierr.Field("page_token", "is not a token of this listing"))
	case errors.Is(err, context.DeadlineExceeded):
		return apierr.New(codes.DeadlineExceeded, "DEADLINE_EXCEEDED", "the deadline passed")
	case errors.Is(err, context.Canceled):
		return apierr.New(codes.Canceled, "CANCELED", "the call was canceled")
	default:
		s.logger.ErrorContext(ctx, "auth call failed", "error", err)
		return apierr.New(codes.Internal, ReasonInternal, "internal error")
	}
}

func userProto(u identity.User) *authv1.User {
	return &authv1.User{
		Id: u.ID, Email: u.Email, DisplayName: u.DisplayName, Role: u.Role.Proto(), Disabled: u.Disabled,
		CreateTime: timestamppb.New(u.CreateTime), UpdateTime: timestamppb.New(u.UpdateTime),
	}
}

func keyProto(k apikey.Key) *authv1.ApiKey {
	return &authv1.ApiKey{Id: k.ID, DisplayName: k.DisplayName, Prefix: k.Prefix, CreateTime: timestamppb.New(k.CreateTime)}
}
