"""Drop-in routes of the systems billwarden replaces (../shared/seeds): thin routers over the
canonical services, with those systems' paths, fields, status codes and error codes."""
