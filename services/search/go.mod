module github.com/marquee-dev/marquee/services/search

go 1.26.0
