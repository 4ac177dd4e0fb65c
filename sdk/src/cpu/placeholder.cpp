// placeholder: delete once this module has real sources
