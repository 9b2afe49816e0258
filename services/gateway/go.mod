module github.com/marquee-dev/marquee/services/gateway

go 1.26.0
