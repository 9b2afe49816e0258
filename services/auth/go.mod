module github.com/marquee-dev/marquee/services/auth

go 1.26.0
