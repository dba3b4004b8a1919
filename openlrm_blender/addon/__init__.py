"""All that imports ``bpy``: the sidebar, the preferences, the operators, and the importer
that turns mesh arrays into a Blender object. The rest of the package never does."""

# The add-on's own module name ("openlrm_blender", or "bl_ext.<repository>.openlrm_blender"
# as an extension): Blender keys the preferences and the user folder by it.
ADDON_PACKAGE = __package__.rpartition(".")[0]
