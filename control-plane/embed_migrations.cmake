# Writes OUTPUT: a C++ file returning the .sql files of MIGRATIONS_DIR in name order as raw strings.
file(GLOB sql_files "${MIGRATIONS_DIR}/*.sql")
list(SORT sql_files)
set(body "")
foreach(sql ${sql_files})
  file(READ ${sql} text)
  string(APPEND body "      R\"kairo_sql(${text})kairo_sql\",\n")
endforeach()
file(WRITE ${OUTPUT} "#include \"control-plane/migrations.hpp\"\nnamespace kairo::control {\nconst std::vector<std::string>& migrations() {\n  static const std::vector<std::string> all = {\n${body}  };\n  return all;\n}\n}  // namespace kairo::control\n")
