"""What a build is asked to do: params.yaml read, merged with its profile and validated; the
mask levels it names; the library code each job depends on; the generated docs of every knob."""
