module github.com/marquee-dev/marquee/services/catalog

go 1.26.0
