-- MLflow keeps its runs and registry in a database of its own beside the application's.
CREATE DATABASE mlflow OWNER skintrouble;
