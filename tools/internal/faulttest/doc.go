// Package faulttest holds Marquee's fault and concurrency tests. The
// services run as real servers on loopback through their app.Run, over the
// embedded FerretDB (or the MongoDB of MARQUEE_TEST_MONGO_URI) and a real
// redis-server, with Shopify's toxiproxy running in the test process between
// a service and the dependency a test breaks: the gateway and Redis, the
// gateway and the catalog, the gateway and search, the catalog and MongoDB.
// A test stops a proxy (the dependency is down), adds a toxic (latency, a
// black hole) or stops a service, and checks what clients see and that
// everything recovers without a restart. Every test is bounded in time.
//
// The package has no code of its own outside its tests.
package faulttest
