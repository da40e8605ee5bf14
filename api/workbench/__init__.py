"""The workbench's data layer, shared by the JSON routes (``api/routes``) and the pages (``api/web``)."""
