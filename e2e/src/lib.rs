//! End-to-end test helpers: network namespaces, real routers.
