-- One PostgreSQL server holds Airflow's and MLflow's metadata, in separate databases.
CREATE DATABASE airflow;
CREATE DATABASE mlflow;
