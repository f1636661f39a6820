SELECT d.call_key FROM _diff AS d;
