"""End-to-end test harness: throwaway PostgreSQL clusters, a running seedproxy, a raw wire client."""
