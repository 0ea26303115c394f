//! Conversion from k8s-openapi objects (filled in below).
