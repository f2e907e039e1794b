-- Runs once, when the PostgreSQL container initialises an empty data directory
-- (mounted into /docker-entrypoint-initdb.d by docker-compose.yml).
--
-- One server, one database and one login role per service: each service owns its
-- tables and no service can connect to another service's database.
-- The passwords are development-only values, matching the URLs in docker-compose.yml.

CREATE ROLE panel LOGIN PASSWORD 'panel';
CREATE DATABASE panel OWNER panel;
REVOKE ALL ON DATABASE panel FROM PUBLIC;

CREATE ROLE operation LOGIN PASSWORD 'operation';
CREATE DATABASE operation OWNER operation;
REVOKE ALL ON DATABASE operation FROM PUBLIC;

CREATE ROLE datasource LOGIN PASSWORD 'datasource';
CREATE DATABASE datasource OWNER datasource;
REVOKE ALL ON DATABASE datasource FROM PUBLIC;
