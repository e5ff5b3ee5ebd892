mod command_table;
