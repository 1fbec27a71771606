-- schema_objects (made by the migrator, like schema_migrations) records the checksum of each
-- Database/ file applied. Serving instances read it to know the schema is current (/readyz).
GRANT SELECT ON schema_objects TO vpsgate_app;
